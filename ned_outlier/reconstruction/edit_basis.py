"""How a change of AU codes moves the mesh in a frame: the displacement basis an edit uses.

The linear model gives, for a code change d (20,), the model-space displacement basis . d. Used raw it has side
effects no face makes (measured, ASSETS.md): AU09 lifts the whole face outline by ~25 units, AU12 drags the outline
near the ears down by ~11; warped into the image these ripple into the hair. Clean-ups, applied once to
each basis vector:

1. remove the rigid motion (translation, small rotation, scale) the displacement induces on skull points that no
   expression moves (nose bridge, eye corners, temples, upper forehead), fitted by linear least squares on the
   similarity's tangent space at the mean mesh;
2. smooth the result over the mesh (a few umbrella-operator iterations on the tessellation), which removes
   vertex-to-vertex ripples of the PLS fit while keeping the broad motion of each AU. The inner-lip ring is left
   out: the tessellation bridges the mouth opening, and averaging across it would close an opening jaw;
3. the lip gap: in the raw model most expression AUs part or close the lips (AU06 opens them by 3.4 units per
   unit, AU10 by 2.0, AU17 closes them by 4.4), so removing a grin closes the lips over its teeth, which is what the
   mouth of a non-smiling target needs; the jaw (AU26), which carries the speech, is kept by the manipulator.
   `hold_lip_gap` (0-1) cancels that fraction of each expression AU's gap change with the jaw drop confined to the
   lips (`lip_weights`; the fit's own re-parameterisation, `AUMeshModel.holding_lip_gap`, cancels all of it with
   the whole jaw drop, which moves the chin). An edit closes at most `max_lip_closing` of the source's opening
   (the opening stays proportional to the speech's), and expression AUs do not part the lips unless `open_lips`
   (`EditGeometry.model_displacement`);
4. fade every AU's displacement but the jaw's (`jaw_name`, AU26: an opening jaw does move the chin) to zero at the
   face outline (`border_weights`): the outline borders the background, and moving it drags hair, ears and wall
   with the face (a cheek "ballooning" outward when a smile is removed). The lips lie far inside the fading band.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ned_outlier.reconstruction.au_model import AUMeshModel
from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.topology import (
    INNER_LIP_RING, OUTER_LIPS, SKULL_POINTS, face_oval, lip_gap_weights, mesh_edges,
)


@dataclass(frozen=True)
class EditBasisConfig:
    """smoothing_iterations / smoothing_rate: umbrella smoothing of each displacement over the mesh (0 = off).
    border_fade: width of the band inside the face outline over which expression displacements fade in, as a
    fraction of the face width (0 = no fade); jaw_name: the AU exempt from it. lip_reach: how far beyond the lips
    (fraction of the face width) the lip-gap compensation reaches. hold_lip_gap: fraction of each expression AU's
    lip-gap change cancelled (1: expression AUs never part or close the lips). max_lip_closing: the largest
    fraction of the source's lip opening an edit may close. open_lips: let expression AUs
    part the lips too (off: only the jaw opens them)."""

    smoothing_iterations: int = 3
    smoothing_rate: float = 0.5
    border_fade: float = 0.15
    jaw_name: str = "AU26"
    lip_reach: float = 0.12
    hold_lip_gap: float = 0.0
    max_lip_closing: float = 0.6
    open_lips: bool = False


def similarity_tangent(points: np.ndarray) -> np.ndarray:
    """(N, 3) points -> (N * 3, 7) displacements of an infinitesimal translation (3), rotation (3) and scale (1)."""
    n = len(points)
    basis = np.zeros((n, 3, 7))
    basis[:, :, 0:3] = np.eye(3)
    x, y, z = points.T
    zero = np.zeros(n)
    # d(R p)/d(omega) = -[p]x: the columns of the rotation part
    basis[:, :, 3:6] = -np.stack(
        [np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], axis=1
    )
    basis[:, :, 6] = points
    return basis.reshape(n * 3, 7)


def remove_skull_motion(displacement: np.ndarray, mean: np.ndarray, skull: tuple[int, ...] = SKULL_POINTS) -> np.ndarray:
    """(V, 3) displacement minus the similarity motion that best explains it on the skull points."""
    tangent_all = similarity_tangent(mean)
    rows = np.concatenate([[3 * i, 3 * i + 1, 3 * i + 2] for i in skull])
    coefficients, *_ = np.linalg.lstsq(tangent_all[rows], displacement.reshape(-1)[rows], rcond=None)
    return displacement - (tangent_all @ coefficients).reshape(displacement.shape)


def umbrella_smooth(displacement: np.ndarray, edges: np.ndarray, iterations: int, rate: float) -> np.ndarray:
    """(V, 3) displacement moved `rate` of the way to its mesh-neighbour average, `iterations` times; vertices
    outside the tessellation (the irises) are left as they are."""
    result = displacement.copy()
    n = len(displacement)
    degree = np.bincount(edges.ravel(), minlength=n).astype(np.float64)
    has_neighbours = degree > 0
    for _ in range(iterations):
        total = np.zeros_like(result)
        np.add.at(total, edges[:, 0], result[edges[:, 1]])
        np.add.at(total, edges[:, 1], result[edges[:, 0]])
        average = total[has_neighbours] / degree[has_neighbours, None]
        result[has_neighbours] += rate * (average - result[has_neighbours])
    return result


def smoothstep(x: np.ndarray) -> np.ndarray:
    """3x^2 - 2x^3 of x clipped to [0, 1]: 0 below 0, 1 above 1, flat at both ends."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def polygon_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(V,) distance of points (V, 2) to the closed polyline polygon (B, 2) (its edges, not its inside)."""
    start, edge = polygon, np.roll(polygon, -1, axis=0) - polygon
    along = np.einsum("vbd,bd->vb", points[:, None] - start, edge) / np.einsum("bd,bd->b", edge, edge)
    nearest = start + np.clip(along, 0.0, 1.0)[..., None] * edge  # (V, B, 2)
    return np.linalg.norm(points[:, None] - nearest, axis=2).min(axis=1)


def border_weights(mean: np.ndarray, band: float) -> np.ndarray:
    """(V,) weights in [0, 1] for a neutral mesh mean (V, 3): smoothstep of each vertex's frontal (x, y) distance
    to the face-outline polygon (`face_oval`) over band * the outline's width; 0 on the outline. band <= 0: all 1."""
    if band <= 0:
        return np.ones(len(mean))
    oval = mean[face_oval(), :2]
    return smoothstep(polygon_distance(mean[:, :2], oval) / (band * np.ptp(oval[:, 0])))


def lip_weights(mean: np.ndarray, reach: float) -> np.ndarray:
    """(V,) weights: 1 inside the outer-lip polygon of mean (V, 3), falling (smoothstep) to 0 at reach * the face
    outline's width outside it (frontal x, y)."""
    lips = mean[list(OUTER_LIPS), :2]
    distance = polygon_distance(mean[:, :2], lips)
    inside = np.array([cv2.pointPolygonTest(lips.astype(np.float32), (float(x), float(y)), False) >= 0
                       for x, y in mean[:, :2]])
    width = np.ptp(mean[face_oval(), 0])
    return np.where(inside, 1.0, smoothstep(1.0 - distance / (reach * width)))


class EditGeometry:
    """Displacements in frame pixels for code changes, under each frame's pose."""

    def __init__(self, model: AUMeshModel, mouth_names: tuple[str, ...], config: EditBasisConfig = EditBasisConfig()):
        """model: the raw AU model (`load_au_model()`, not the fit's lip-gap-holding re-parameterisation)."""
        edges = mesh_edges()
        edges = edges[~np.isin(edges, INNER_LIP_RING).any(axis=1)]
        cleaned = np.stack([
            umbrella_smooth(remove_skull_motion(vector, model.mean), edges, config.smoothing_iterations,
                            config.smoothing_rate)
            for vector in model.basis
        ])
        gap = lip_gap_weights(len(model.mean))
        jaw = model.basis[model.index([config.jaw_name])[0]]
        lips_only = jaw * lip_weights(model.mean, config.lip_reach)[:, None]
        self.lip_opener = lips_only / float(np.sum(gap * lips_only))  # (V, 3): opens the inner lips by one unit
        opens = np.tensordot(cleaned, gap, axes=([1, 2], [0, 1]))  # (20,) lip-gap change per unit of each AU
        expression = ~np.isin(model.au_names, mouth_names)
        cleaned -= (config.hold_lip_gap * expression * opens)[:, None, None] * self.lip_opener
        fade = border_weights(model.mean, config.border_fade)[None, :, None]  # 1 at the lips: gaps are unchanged
        exempt = np.array([name == config.jaw_name for name in model.au_names])[:, None, None]
        self.au_names = model.au_names
        self.basis = np.where(exempt, cleaned, cleaned * fade)  # (20, V, 3) model space
        self.opens = np.tensordot(self.basis, gap, axes=([1, 2], [0, 1]))  # (20,)
        self.expression = expression  # (20,) bool: the AUs outside mouth_names
        self.max_lip_closing = config.max_lip_closing
        self.open_lips = config.open_lips

    def model_displacement(self, delta_aus: np.ndarray, source_gap: float | None = None) -> np.ndarray:
        """delta_aus (20,) -> (V, 3) model-space displacement.

        Unless `open_lips`, the part of the lip parting that expression AUs add is cancelled (a warp cannot draw
        the inside of a mouth it opens: closed lips stretched apart show a red smear); closing is kept. With
        source_gap (the frame's inner-lip opening, model units), the lips close by at most `max_lip_closing` of
        it: the edited opening stays proportional to the source's, so the speech's rhythm stays in the lips."""
        model_space = np.tensordot(delta_aus, self.basis, axes=([0], [0]))
        opening = float(delta_aus[self.expression] @ self.opens[self.expression])
        correction = 0.0
        if opening > 0 and not self.open_lips:
            correction -= opening
        if source_gap is not None:
            closing_room = self.max_lip_closing * max(source_gap, 0.0)
            change = float(delta_aus @ self.opens) + correction
            correction += max(-closing_room - change, 0.0)
        return model_space + correction * self.lip_opener

    def displacement(self, delta_aus: np.ndarray, rotation: np.ndarray, scale: float,
                     source_gap: float | None = None) -> np.ndarray:
        """delta_aus (20,), R_head (3, 3), scale -> (V, 3) displacement in frame pixels (x right, y down), of
        `model_displacement`."""
        return scale * self.model_displacement(delta_aus, source_gap) @ (FLIP @ rotation).T
