"""Fit the linear AU mesh model plus a similarity pose to observed 3D landmarks.

    observed (478, 3) ~= scale * R_img @ (mean + basis . aus) + translation

minimised jointly over the similarity (scale, R_img, translation) and the AUs (bounded to [0, max_au], ridge
penalty) by bounded Gauss-Newton: each step linearises the rotation as R_img @ exp([w]x) and solves the bounded
linear least-squares problem for (w, d_scale, d_translation, d_aus). The AU basis is strongly correlated with rigid
motion (AU09 lifts the whole face outline), so the joint step matters: alternating pose and AU solves (block
coordinate descent) needed ~30 rounds to reach what three Gauss-Newton steps reach.

Image space ("img"): x right, y down, z away from the camera (MediaPipe's convention, in pixels). Model space: x right,
y up, z towards the camera. `R_img = FLIP @ R_head`, FLIP = diag(1, -1, -1) (a proper rotation), so `R_head` is the
head's rotation in the model's own frame and is identity for a frontal face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear
from scipy.spatial.transform import Rotation

from ned_outlier.reconstruction.au_model import IRIS_VERTICES, AUMeshModel

FLIP = np.diag([1.0, -1.0, -1.0])
N_POSE = 7  # rotation increment (3), scale (1), translation (3)


@dataclass(frozen=True)
class FitConfig:
    """Settings of the per-frame fit.

    ridge: penalty ridge * |aus|^2 added to the squared error measured in model units (summed over vertex
        coordinates), so it does not depend on the face's size in pixels. The AU basis is ill-conditioned (AU09 and
        AU15 displacements have cosine 0.92), so real meshes need some ridge.
    iterations: Gauss-Newton steps per frame when warm-started from the previous frame (cold start: twice as many).
    iris_weight: weight of the 10 iris points (gaze, which no AU models); 0 ignores them.
    max_au: upper bound of an AU intensity (the model's scale is 0-1; real faces exceed 1 a little).
    """

    ridge: float = 12.0
    iterations: int = 2
    iris_weight: float = 0.0
    max_au: float = 2.0

    def __post_init__(self) -> None:
        if self.ridge < 0 or self.iterations < 1 or self.iris_weight < 0 or self.max_au <= 0:
            raise ValueError("ridge and iris_weight must be >= 0, iterations >= 1, max_au > 0")


@dataclass(frozen=True)
class Similarity:
    """x_img = scale * rotation @ x_model + translation; rotation (3, 3) is R_img, translation (3,)."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) model-space points -> image space."""
        return self.scale * points @ self.rotation.T + self.translation

    def invert(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) image-space points -> model space."""
        return (points - self.translation) @ self.rotation / self.scale

    @property
    def head_rotation(self) -> np.ndarray:
        """(3, 3) R_head: the head's rotation in model space (identity = frontal)."""
        return FLIP @ self.rotation


@dataclass(frozen=True)
class FitResult:
    """aus (20,); pose; vertices (478, 3) fitted mesh in image space; rms: weighted RMS 3D error in pixels."""

    aus: np.ndarray
    pose: Similarity
    vertices: np.ndarray
    rms: float


def umeyama(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> Similarity:
    """Weighted least-squares similarity mapping source (N, 3) onto target (N, 3); proper rotation (det +1).

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point patterns".
    """
    w = weights / weights.sum()
    mu_s, mu_t = w @ source, w @ target
    src, tgt = source - mu_s, target - mu_t
    covariance = (tgt * w[:, None]).T @ src
    u, d, vt = np.linalg.svd(covariance)
    sign = np.ones(3)
    sign[2] = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    rotation = (u * sign) @ vt
    variance = w @ (src**2).sum(axis=1)
    scale = float((d * sign).sum() / variance)
    return Similarity(scale, rotation, mu_t - scale * rotation @ mu_s)


def box_qp(hessian: np.ndarray, gradient: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """argmin_d 1/2 d^T H d - g^T d subject to lower <= d <= upper, for symmetric positive-definite H (n, n).

    Primal active-set method: variables leave the free set when their unconstrained value crosses a bound and
    return when the KKT multiplier says the bound is no longer binding. Exact at convergence (a handful of
    n x n solves here), with scipy's BVLS as the fallback should it cycle.
    """
    n = len(gradient)
    at_bound = np.zeros(n, dtype=bool)
    step = np.clip(np.zeros(n), lower, upper)
    for _ in range(3 * n):
        free = ~at_bound
        step[free] = np.linalg.solve(
            hessian[np.ix_(free, free)], gradient[free] - hessian[np.ix_(free, at_bound)] @ step[at_bound]
        )
        outside = free & ((step < lower) | (step > upper))
        if outside.any():
            step[outside] = np.clip(step[outside], lower[outside], upper[outside])
            at_bound |= outside
            continue
        pull = gradient - hessian @ step  # > 0: the objective would fall by increasing that variable
        wrong = at_bound & (((step <= lower) & (pull > 1e-12)) | ((step >= upper) & (pull < -1e-12)))
        if not wrong.any():
            return step
        at_bound[np.argmax(np.abs(pull) * wrong)] = False
    lower_factor = np.linalg.cholesky(hessian)
    rhs = np.linalg.solve(lower_factor, gradient)
    return lsq_linear(lower_factor.T, rhs, bounds=(lower, upper), method="bvls").x


def _skew(points: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N, 3, 3) cross-product matrices [p]x."""
    x, y, z = points.T
    zero = np.zeros_like(x)
    return np.stack(
        [np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], axis=1
    )


class AUFitter:
    """Fits one frame's landmarks (478, 3) with the AU model; `fit` is the only entry point."""

    def __init__(self, model: AUMeshModel, config: FitConfig = FitConfig()):
        self.model = model
        self.config = config
        weights = np.ones(model.mean.shape[0])
        weights[list(IRIS_VERTICES)] = config.iris_weight
        self.weights = weights

    def _step(self, landmarks: np.ndarray, pose: Similarity, aus: np.ndarray) -> tuple[Similarity, np.ndarray]:
        """One bounded Gauss-Newton step on (rotation, scale, translation, aus)."""
        s, rotation = pose.scale, pose.rotation
        model_points = self.model.vertices(aus)  # (N, 3)
        rotated = model_points @ rotation.T
        residual = s * rotated + pose.translation - landmarks  # (N, 3)
        n = len(model_points)
        jacobian = np.empty((n, 3, N_POSE + self.model.n_aus))
        jacobian[:, :, 0:3] = -s * np.einsum("ij,njk->nik", rotation, _skew(model_points))
        jacobian[:, :, 3] = rotated
        jacobian[:, :, 4:7] = np.eye(3)
        jacobian[:, :, 7:] = s * np.einsum("ij,knj->nik", rotation, self.model.basis)
        root_w = np.sqrt(self.weights)[:, None]
        design = (jacobian * root_w[..., None]).reshape(3 * n, -1)
        target = -(residual * root_w).reshape(-1)
        # Ridge on the model-space error: image-space error is scale^2 times larger, hence ridge * s^2.
        normal = design.T @ design
        gradient = design.T @ target
        ridge = self.config.ridge * s * s
        normal[7:, 7:] += ridge * np.eye(self.model.n_aus)
        gradient[7:] -= ridge * aus
        step = np.linalg.solve(normal, gradient)
        new_aus = aus + step[7:]
        if new_aus.min() < 0 or new_aus.max() > self.config.max_au:
            step = self._bounded_step(normal, gradient, aus)
            new_aus = np.clip(aus + step[7:], 0.0, self.config.max_au)
        new_rotation = rotation @ Rotation.from_rotvec(step[0:3]).as_matrix()
        return Similarity(s + step[3], new_rotation, pose.translation + step[4:7]), new_aus

    def _bounded_step(self, normal: np.ndarray, gradient: np.ndarray, aus: np.ndarray) -> np.ndarray:
        """The Gauss-Newton step with aus + d_aus kept in [0, max_au]."""
        lo = np.full(len(gradient), -np.inf)
        hi = np.full(len(gradient), np.inf)
        lo[N_POSE:], hi[N_POSE:] = -aus, self.config.max_au - aus
        return box_qp(normal, gradient, lo, hi)

    def fit(self, landmarks: np.ndarray, initial_aus: np.ndarray | None = None) -> FitResult:
        """landmarks (478, 3) image space -> FitResult; `initial_aus` (20,) warm-starts from a previous frame."""
        landmarks = np.asarray(landmarks, dtype=np.float64)
        cold = initial_aus is None
        aus = np.zeros(self.model.n_aus) if cold else np.clip(initial_aus, 0.0, self.config.max_au)
        pose = umeyama(self.model.vertices(aus), landmarks, self.weights)
        for _ in range(self.config.iterations * (2 if cold else 1)):
            pose, aus = self._step(landmarks, pose, aus)
        vertices = pose.apply(self.model.vertices(aus))
        error = ((vertices - landmarks) ** 2).sum(axis=1)
        rms = float(np.sqrt(self.weights @ error / self.weights.sum()))
        return FitResult(aus=aus, pose=pose, vertices=vertices, rms=rms)
