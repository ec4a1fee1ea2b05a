"""Backend `flame-fit`: FLAME fitted to each frame's 68 iBUG landmarks, taken from the MediaPipe face mesh, for users
with FLAME but not DECA: the FLAME schema (50 expression codes + the jaw opening) from FLAME alone.

    config = ReconstructionConfig(backend="flame-fit", flame=FlameDecaConfig(flame_model="generic_model.pkl"),
                                  flame_fit=FlameFitConfig(landmark_embedding="landmark_embedding.npy"))
    params = reconstruct("video.mp4", config)       # FaceParams of schema flame_schema("flame-fit", V)

The FLAME file is the one setting the FLAME backends share, `flame.flame_model` (--flame-model, FLAME_MODEL_PATH);
DECA's landmark_embedding.npy is `flame_fit.landmark_embedding` (--landmark-embedding,
FLAME_LANDMARK_EMBEDDING_PATH). Both are loaded and checked before any frame is read.

Tracking and the face mesh are mediapipe-au's (`extract_landmarks`); MEDIAPIPE_TO_IBUG68 picks the 68 iBUG points
from the mesh, FlameLandmarks gives FLAME's (DECA's embedding, the jaw-line contour by the head's yaw). The fit, per
track, minimises for each frame

    mean_k |x_k - proj(L_k)|^2 / size^2 + w_exp |exp|^2 + w_jaw jaw^2 + w_smooth |theta - theta_previous|^2

with x_k the observed points, L_k FLAME's landmarks of (shape, exp, jaw), proj(p) = s (FLIP R p)[:2] + t the
orthographic camera, size the RMS distance of the observed points from their centroid, theta = (exp, jaw, rotation
axis-angle) and theta_previous the frame before's (the previous batch's last frame for a batch's first; absent for
the track's first batch); plus w_shape |shape|^2 once (per-frame terms averaged over the frames). First the shape is
fitted jointly with every code of up to `shape_frames` frames spread over the track (no smoothness term), then held
fixed while the found frames, in order, are fitted `batch_size` at a time; each batch starts from the previous
batch's last expression and jaw, and from a similarity alignment (`rigid_alignment`) of the 51 static landmarks of
that start for rotation, scale and translation. The optimiser is L-BFGS with a strong-Wolfe line search. The contour's
yaw bin is not differentiable in the yaw, as in DECA. What FaceParams holds for this backend:

  expression (T, 50)   FLAME's expression code exp[0:50], fitted;
  mouth (T, 1)         the jaw opening (the jaw's axis-angle x component), fitted; the jaw's other rotations are
                       not (zero), so the codes re-pose the mesh exactly; NED edits these 51 numbers;
  rotation (T, 3, 3)   the head rotation about the model origin (model space: x right, y up, z forward);
  identity (V, 3)      the subject's neutral mesh: FLAME's template plus the shape blend of the track's one shape
                       code, no expression, no pose;
  scale, translation   the orthographic camera in frame pixels: frame pixels = scale * FLIP @ rotation @ model +
                       translation, model the mesh with the jaw posed, no global rotation; translation z is 0;
  vertices (T, V, 3)   the posed FLAME mesh in frame pixels (x right, y down, z away from the camera, pixels);
  landmarks (T, V, 3)  the same mesh, as flame-deca's (the observed MediaPipe points are not kept);
  fit_error (T,)       RMS 2-D distance of FLAME's 68 landmarks from the observed ones / the observed outer-eye-
                       corner distance;
  mouth_occluded, hands  from the face mesh pass, as mediapipe-au's.
Everything per frame is NaN (fit_error too) where the face mesh found no face.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ned_outlier.face.crop import crop_matrices
from ned_outlier.io.video import VideoReader
from ned_outlier.reconstruction.flame.landmarks import FlameLandmarks, barycentric_landmarks, load_landmark_embedding
from ned_outlier.reconstruction.flame.layer import FlameLayer, axis_angle_to_matrix
from ned_outlier.reconstruction.flame.model_file import load_flame_model
from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.flame_deca import N_EXPRESSION, N_SHAPE, flame_schema
from ned_outlier.reconstruction.params import FaceParams, VideoMeta

if TYPE_CHECKING:
    from ned_outlier.reconstruction.reconstructor import ReconstructionConfig

log = logging.getLogger(__name__)

BACKEND = "flame-fit"
CHUNK = 64  # frames placed in frame pixels at once

# MediaPipe face-mesh vertex -> iBUG 68 landmark (0-based iBUG order: contour 0-16 from the subject's right ear to
# the left, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67). The correspondence of Peizhi
# Yan's mediapipe2dlib (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks, mp2dlib.py), which averages two vertices
# for five points; one of the two is taken here (contour 3: 132, 4: 58, 12: 288; nose 27: 168, 28: 197), keeping
# the table left-right symmetric on MediaPipe's canonical face. Checked by eye on the webcam clip.
MEDIAPIPE_TO_IBUG68 = np.array([
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,  # contour
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # right brow, left brow
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose bridge, nose base
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # right eye, left eye
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
])
STATIC = slice(17, 68)  # the 51 points FLAME fixes on the mesh (not the contour)
OUTER_EYE_CORNERS_68 = (36, 45)
CODE_NAMES = ("expression", "jaw", "rotation", "log_scale", "shift")
SMOOTHED = ("expression", "jaw", "rotation")
MIN_REACH = 1e-2


@dataclass(frozen=True)
class FlameFitConfig:
    """landmark_embedding: DECA's landmark_embedding.npy (None: FLAME_LANDMARK_EMBEDDING_PATH); the FLAME file is
    `flame.flame_model` of the ReconstructionConfig, shared with flame-deca. shape_frames: frames (spread over the
    track) the shape code is fitted on, with shape_iterations L-BFGS iterations; iterations: L-BFGS iterations per
    batch of batch_size frames. The weights of the objective (module docstring): shape_weight, expression_weight,
    jaw_weight (L2 on the codes), smooth_weight (on the change of expression, jaw and rotation from the frame
    before). device: torch device of FLAME and the fit, e.g. "cpu" or "cuda"."""

    landmark_embedding: str | None = None
    shape_frames: int = 16
    shape_iterations: int = 60
    iterations: int = 20
    batch_size: int = 32
    shape_weight: float = 1e-5
    expression_weight: float = 1e-5
    jaw_weight: float = 1e-4
    smooth_weight: float = 1e-4
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("shape_frames", "shape_iterations", "iterations", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"flame_fit.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("shape_weight", "expression_weight", "jaw_weight", "smooth_weight"):
            if not getattr(self, name) >= 0:  # NaN too
                raise ValueError(f"flame_fit.{name} must be >= 0, got {getattr(self, name)}")


def normalise(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed points (N, 68, 2) in frame pixels -> (centred and scaled points (N, 68, 2), centroid (N, 2), size
    (N,)): size the RMS distance of the points from their centroid."""
    centre = points.mean(1)
    size = np.sqrt(((points - centre[:, None]) ** 2).sum(-1).mean(1))
    return (points - centre[:, None]) / size[:, None, None], centre, size


def rigid_alignment(model: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The orthographic similarity that best maps model points (N, P, 3) onto image points (N, P, 2): image ~ s *
    (FLIP @ R @ model)[:2] + t. The least-squares affine 2 x 3 camera is made a scaled pair of orthonormal rows (its
    singular values averaged), whose rows are R's first row and minus its second. Returns rotation axis-angle (N, 3),
    scale s (N,), shift t (N, 2)."""
    model_centre, image_centre = model.mean(1), image.mean(1)
    centred_model, centred_image = model - model_centre[:, None], image - image_centre[:, None]
    affine = np.stack([np.linalg.lstsq(m, i, rcond=None)[0].T for m, i in zip(centred_model, centred_image)])
    u, singular, vt = np.linalg.svd(affine, full_matrices=False)  # (N, 2, 2), (N, 2), (N, 2, 3)
    rows = u @ vt
    first, second = rows[:, 0], -rows[:, 1]
    rotation = np.stack([first, second, np.cross(first, second)], axis=1)
    scale = singular.mean(1)
    shift = image_centre - scale[:, None] * np.einsum("nij,nj->ni", rows, model_centre)
    return Rotation.from_matrix(rotation).as_rotvec(), scale, shift


def warm_start(previous: dict[str, torch.Tensor] | None, count: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Starting expression (count, 50) and jaw (count, 1) of a batch: every frame the previous batch's last frame's
    (`previous` codes (N, ...) of that batch), zero for a track's first batch."""
    if previous is None:
        return {"expression": torch.zeros(count, N_EXPRESSION, device=device),
                "jaw": torch.zeros(count, 1, device=device)}
    return {name: previous[name][-1:].detach().expand(count, -1).clone() for name in ("expression", "jaw")}


def project(points: torch.Tensor, rotation: torch.Tensor, log_scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Model-space points (N, P, 3) through rotation axis-angle (N, 3), scale exp(log_scale) (N,) and shift (N, 2)
    -> (N, P, 2): exp(log_scale) * (FLIP @ R @ p)[:2] + shift."""
    flip = torch.as_tensor(FLIP[:2], dtype=points.dtype, device=points.device)
    image_rows = flip @ axis_angle_to_matrix(rotation)  # (N, 2, 3)
    return log_scale.exp()[:, None, None] * torch.einsum("nij,npj->npi", image_rows, points) + shift[:, None]


def frame_objective(predicted: torch.Tensor, target: torch.Tensor, codes: dict[str, torch.Tensor],
                    previous: dict[str, torch.Tensor] | None, config: FlameFitConfig, smooth: bool = True
                    ) -> torch.Tensor:
    """The per-frame terms of the objective (module docstring) of N frames: predicted and target normalised points
    (N, 68, 2), codes (N, ...) by CODE_NAMES -> (N,). With `smooth` the frames are consecutive: each one's change of
    expression, jaw and rotation from the frame before is weighed in, the first frame's from the last of `previous`
    (the codes (M, ...) of the batch before; None: the first frame has no predecessor)."""
    loss = ((predicted - target) ** 2).sum(-1).mean(-1)
    loss = loss + config.expression_weight * (codes["expression"] ** 2).sum(-1)
    loss = loss + config.jaw_weight * (codes["jaw"] ** 2).sum(-1)
    if not smooth:
        return loss
    for name in SMOOTHED:
        values = codes[name]
        before = values[:1] if previous is None else previous[name][-1:].detach()
        loss = loss + config.smooth_weight * ((values - torch.cat([before, values[:-1]])) ** 2).sum(-1)
    return loss


class FlameFitter:
    """FLAME (a FlameLayer) fitted to normalised iBUG landmarks (module docstring) with its FlameLandmarks, on the
    layer's device, float32.

    L-BFGS is scale-sensitive: it works on each shape and expression coefficient times `reach` (150,), the RMS
    distance the 51 static landmarks move per unit of it (model units, at least MIN_REACH of the largest), times
    the camera's mean scale, so that a unit step of any variable moves the landmarks by about a face-size unit."""

    def __init__(self, flame: FlameLayer, landmarks: FlameLandmarks, config: FlameFitConfig) -> None:
        self.flame, self.landmarks, self.config = flame, landmarks, config
        self.device = flame.v_template.device
        directions = flame.shapedirs.permute(2, 0, 1)  # (150, V, 3): landmarks are linear in the vertices
        moved = barycentric_landmarks(directions, landmarks.faces, landmarks.static_faces, landmarks.static_bary)
        reach = (moved ** 2).sum(-1).mean(-1).sqrt()
        self.reach = reach.clamp(min=MIN_REACH * float(reach.max()))

    def model_points(self, shape: torch.Tensor, expression: torch.Tensor, jaw: torch.Tensor,
                     rotation: torch.Tensor) -> torch.Tensor:
        """FLAME's 68 landmarks in model space, unrotated (the rotation axis-angle (N, 3) picks the contour's yaw
        bin): shape (N, 100) or (1, 100), expression (N, 50), jaw opening (N, 1) -> (N, 68, 3)."""
        vertices = self.mesh(shape, expression, jaw)
        return self.landmarks(vertices, rotation.detach())

    def mesh(self, shape: torch.Tensor, expression: torch.Tensor, jaw: torch.Tensor) -> torch.Tensor:
        """FLAME with the jaw opened by `jaw` (N, 1) and no global rotation: shape (N or 1, 100), expression (N, 50)
        -> vertices (N, V, 3), model space."""
        count = len(expression)
        pose = torch.cat([jaw.new_zeros(count, 3), jaw, jaw.new_zeros(count, 2)], dim=1)
        return self.flame(shape.expand(count, -1), expression, pose).vertices

    def start(self, shape: torch.Tensor, target: np.ndarray, previous: dict[str, torch.Tensor] | None
              ) -> dict[str, torch.Tensor]:
        """A batch's starting codes for normalised targets (N, 68, 2): expression and jaw by `warm_start`, rotation,
        log scale and shift by `rigid_alignment` of the static landmarks of that start."""
        codes = warm_start(previous, len(target), self.device)
        with torch.no_grad():
            points = self.model_points(shape, codes["expression"], codes["jaw"], torch.zeros(len(target), 3,
                                                                                             device=self.device))
        rotation, scale, shift = rigid_alignment(points[:, STATIC].double().cpu().numpy(), target[:, STATIC])
        for name, value in (("rotation", rotation), ("log_scale", np.log(scale)), ("shift", shift)):
            codes[name] = torch.as_tensor(value, dtype=torch.float32, device=self.device)
        return codes

    def fit(self, shape: torch.Tensor, target: np.ndarray, codes: dict[str, torch.Tensor],
            previous: dict[str, torch.Tensor] | None, iterations: int, fit_shape: bool = False
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L-BFGS from `codes` (N, ...) (and `shape` (1, 100), fitted too with fit_shape, else fixed) to normalised
        targets (N, 68, 2) of consecutive frames (with fit_shape: any frames, no smoothness) -> (shape, codes)."""
        config = self.config
        target_tensor = torch.as_tensor(target, dtype=torch.float32, device=self.device)
        gain = self.reach * codes["log_scale"].exp().mean()
        gains = {"shape": gain[:N_SHAPE], "expression": gain[N_SHAPE:]}
        values = {"shape": shape, **codes}
        scaled = {name: (value * gains.get(name, 1.0)).detach().clone().requires_grad_(name != "shape" or fit_shape)
                  for name, value in values.items()}
        optimiser = torch.optim.LBFGS([value for value in scaled.values() if value.requires_grad], lr=1.0,
                                      max_iter=iterations, max_eval=2 * iterations, history_size=20,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-14)

        def unscaled() -> dict[str, torch.Tensor]:
            return {name: value / gains.get(name, 1.0) for name, value in scaled.items()}

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            now = unscaled()
            predicted = project(self.model_points(now["shape"], now["expression"], now["jaw"], now["rotation"]),
                                now["rotation"], now["log_scale"], now["shift"])
            loss = frame_objective(predicted, target_tensor, now, previous, config, smooth=not fit_shape).sum()
            if fit_shape:
                loss = loss + len(target) * config.shape_weight * (now["shape"] ** 2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        with torch.no_grad():
            now = unscaled()
        return now.pop("shape"), now

    def fit_track(self, target: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Normalised targets (N, 68, 2) of a track's found frames, in order -> the shape (1, 100) and every frame's
        codes (N, ...): the shape on up to shape_frames of them, then batches, each warm-started (module
        docstring)."""
        config = self.config
        chosen = np.unique(np.linspace(0, len(target) - 1, min(config.shape_frames, len(target))).round().astype(int))
        shape = torch.zeros(1, N_SHAPE, device=self.device)
        shape, _ = self.fit(shape, target[chosen], self.start(shape, target[chosen], None), None,
                            config.shape_iterations, fit_shape=True)
        batches, previous = [], None
        for first in range(0, len(target), config.batch_size):
            batch = target[first:first + config.batch_size]
            _, previous = self.fit(shape, batch, self.start(shape, batch, previous), previous, config.iterations)
            batches.append(previous)
        return shape, {name: torch.cat([codes[name] for codes in batches]) for name in CODE_NAMES}


class FlameFitReconstructor:
    """Frames of one tracked face -> FaceParams, FLAME fitted to the face mesh's landmarks (module docstring). The
    FLAME file (`config.flame.flame_model`) and the landmark embedding (`config.flame_fit.landmark_embedding`) are
    loaded and checked when this is made, before any frame is read: a missing or wrong file is a one-line UserError
    naming it and how to give it."""

    def __init__(self, config: "ReconstructionConfig") -> None:
        self.config = config
        settings = config.flame_fit
        model = load_flame_model(config.flame.flame_model)
        embedding = load_landmark_embedding(settings.landmark_embedding)
        device = torch.device(settings.device)
        self.fitter = FlameFitter(FlameLayer(model, n_shape=N_SHAPE, n_expression=N_EXPRESSION).to(device),
                                  FlameLandmarks(embedding, model.f).to(device), settings)
        self.schema = flame_schema(BACKEND, model.v_template.shape[0])

    @torch.no_grad()
    def place(self, shape: torch.Tensor, codes: dict[str, torch.Tensor], centre: np.ndarray, size: np.ndarray
              ) -> tuple[np.ndarray, ...]:
        """Fitted codes (N, ...) of frames normalised by centre (N, 2) and size (N,) -> rotation (N, 3, 3), scale
        (N,), translation (N, 3), vertices (N, V, 3) float32 in frame pixels, and the 68 landmarks (N, 68, 2)."""
        fitter = self.fitter
        model = fitter.mesh(shape, codes["expression"], codes["jaw"]).double().cpu().numpy()
        points = fitter.landmarks(torch.as_tensor(model, dtype=torch.float32, device=fitter.device),
                                  codes["rotation"]).double().cpu().numpy()
        rotation = Rotation.from_rotvec(codes["rotation"].double().cpu().numpy()).as_matrix()
        scale = np.exp(codes["log_scale"].double().cpu().numpy()) * size
        translation = np.zeros((len(scale), 3))
        translation[:, :2] = codes["shift"].double().cpu().numpy() * size[:, None] + centre
        image = np.einsum("ij,njk->nik", FLIP, rotation)
        vertices = scale[:, None, None] * np.einsum("nij,nvj->nvi", image, model) + translation[:, None]
        landmarks = scale[:, None, None] * np.einsum("nij,nvj->nvi", image[:, :2], points) + translation[:, None, :2]
        return rotation, scale, translation, vertices.astype(np.float32), landmarks

    def __call__(self, reader: VideoReader, frame_count: int, track, progress: bool) -> FaceParams | None:
        """FaceParams of one track (`ned_outlier.face.FaceTrack`) of `reader`'s video (module docstring); None when
        the face mesh found the face in none of its frames."""
        from ned_outlier.reconstruction.reconstructor import extract_landmarks

        crops = crop_matrices(track.boxes, self.config.crop)
        mesh, mouth_occluded, hands = extract_landmarks(reader, crops, track.present, self.config, progress)
        found = ~np.isnan(mesh[:, 0, 0])
        if not found.any():
            return None
        indices = np.flatnonzero(found)
        observed = mesh[indices][:, MEDIAPIPE_TO_IBUG68, :2].astype(np.float64)
        target, centre, size = normalise(observed)
        shape, codes = self.fitter.fit_track(target)
        chunks = [self.place(shape, {name: value[start:start + CHUNK] for name, value in codes.items()},
                             centre[start:start + CHUNK], size[start:start + CHUNK])
                  for start in range(0, len(indices), CHUNK)]  # so memory does not grow with the clip's length
        rotation, scale, translation, vertices, points = (np.concatenate(part) for part in zip(*chunks))
        frames = len(found)

        def per_frame(values: np.ndarray, dtype=np.float32) -> np.ndarray:
            out = np.full((frames, *values.shape[1:]), np.nan, dtype=dtype)
            out[indices] = values
            return out

        interocular = np.linalg.norm(observed[:, OUTER_EYE_CORNERS_68[0]] - observed[:, OUTER_EYE_CORNERS_68[1]],
                                     axis=-1)
        error = np.sqrt(((points - observed) ** 2).sum(-1).mean(-1)) / interocular
        with torch.no_grad():
            identity = self.fitter.mesh(shape, torch.zeros(1, N_EXPRESSION, device=self.fitter.device),
                                        torch.zeros(1, 1, device=self.fitter.device))
        log.info("flame-fit, track %d: landmark RMS / interocular %.4f (median over %d frames)", track.track_id,
                 float(np.median(error)), len(indices))
        return FaceParams(
            schema=self.schema, video=VideoMeta.of(reader, frame_count), track_id=track.track_id,
            identity=identity[0].cpu().numpy().astype(np.float32), face_found=found, crop_matrix=crops,
            rotation=per_frame(rotation, np.float64), scale=per_frame(scale, np.float64),
            translation=per_frame(translation, np.float64),
            expression=per_frame(codes["expression"].cpu().numpy()), mouth=per_frame(codes["jaw"].cpu().numpy()),
            vertices=per_frame(vertices), landmarks=per_frame(vertices), fit_error=per_frame(error),
            mouth_occluded=mouth_occluded & found,
            hands=np.where(found[:, None, None, None], hands, np.float32(np.nan)))
