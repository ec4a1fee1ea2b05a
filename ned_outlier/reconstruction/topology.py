"""Index sets of the MediaPipe 478-point face mesh used across the project, and measures taken on it."""

from __future__ import annotations

import numpy as np

# Inner-lip contour, upper point paired with the lower point below it (corners 78 and 308 excluded).
INNER_LIP_PAIRS = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402), (310, 318), (415, 324))
OUTER_EYE_CORNERS = (33, 263)
IRIS = tuple(range(468, 478))


def inner_lip_opening(vertices: np.ndarray) -> np.ndarray:
    """Mean distance between paired upper and lower inner-lip points: (..., 478, 3) -> (...).

    Rotation-invariant (3D distances), in the units of `vertices`.
    """
    upper = vertices[..., [u for u, _ in INNER_LIP_PAIRS], :]
    lower = vertices[..., [lo for _, lo in INNER_LIP_PAIRS], :]
    return np.linalg.norm(upper - lower, axis=-1).mean(axis=-1)


def lip_gap_weights(n_vertices: int = 478) -> np.ndarray:
    """(n_vertices, 3) weights w such that sum(w * v) is the mean signed inner-lip gap of model-space vertices v
    (y up: upper lip y minus lower lip y), a linear functional used to hold the mouth opening fixed."""
    weights = np.zeros((n_vertices, 3))
    for upper, lower in INNER_LIP_PAIRS:
        weights[upper, 1] += 1.0 / len(INNER_LIP_PAIRS)
        weights[lower, 1] -= 1.0 / len(INNER_LIP_PAIRS)
    return weights
