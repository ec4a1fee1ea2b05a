"""How a change of AU codes moves the mesh in a frame: the displacement basis an edit uses.

The linear model gives, for a code change d (20,), the model-space displacement basis . d. Used raw it has side
effects no face makes (measured, ASSETS.md): AU09 lifts the whole face outline by ~25 units, AU12 drags the outline
near the ears down by ~11; warped into the image these ripple into the hair. Two linear clean-ups, applied once to
each basis vector:

1. remove the rigid motion (translation, small rotation, scale) the displacement induces on skull points that no
   expression moves (nose bridge, eye corners, temples, upper forehead), fitted by linear least squares on the
   similarity's tangent space at the mean mesh;
2. smooth the result over the mesh (a few umbrella-operator iterations on the tessellation), which removes
   vertex-to-vertex ripples of the PLS fit while keeping the broad motion of each AU. The inner-lip ring is left
   out: the tessellation bridges the mouth opening, and averaging across it would close an opening jaw;
3. hold the inner-lip gap again (`AUMeshModel.holding_lip_gap`): smoothing across the lips would otherwise let
   expression AUs open or close the mouth a little.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ned_outlier.reconstruction.au_model import AUMeshModel
from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.topology import INNER_LIP_RING, SKULL_POINTS, mesh_edges


@dataclass(frozen=True)
class EditBasisConfig:
    """smoothing_iterations / smoothing_rate: umbrella smoothing of each displacement over the mesh (0 = off)."""

    smoothing_iterations: int = 3
    smoothing_rate: float = 0.5


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


class EditGeometry:
    """Displacements in frame pixels for code changes, under each frame's pose."""

    def __init__(self, model: AUMeshModel, mouth_names: tuple[str, ...], config: EditBasisConfig = EditBasisConfig()):
        edges = mesh_edges()
        edges = edges[~np.isin(edges, INNER_LIP_RING).any(axis=1)]
        cleaned = np.stack([
            umbrella_smooth(remove_skull_motion(vector, model.mean), edges, config.smoothing_iterations,
                            config.smoothing_rate)
            for vector in model.basis
        ])
        self.au_names = model.au_names
        self.basis = replace(model, basis=cleaned).holding_lip_gap(mouth_names).basis  # (20, V, 3) model space

    def displacement(self, delta_aus: np.ndarray, rotation: np.ndarray, scale: float) -> np.ndarray:
        """delta_aus (20,), R_head (3, 3), scale -> (V, 3) displacement in frame pixels (x right, y down)."""
        model_space = np.tensordot(delta_aus, self.basis, axes=([0], [0]))
        return scale * model_space @ (FLIP @ rotation).T
