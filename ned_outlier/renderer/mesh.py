"""The mesh the face warp moves: MediaPipe's 898-triangle tessellation plus a skirt of anchor rings around it.

The tessellation (vertices 0-467) is a topological disc: its only boundary is the 36-vertex face oval, so the eyes
and the mouth interior are covered by triangles and move with the eyelids and lips. The skirt adds rings of anchor
points outside the oval (the oval scaled about its centre) and a fixed strip of triangles between consecutive
rings, wound like the tessellation. The anchors never move, so the motion fades to zero between the oval and the
first ring, and the strip between the first and the last ring is a still margin. Face plus skirt is again a disc:
a warp that keeps its outer ring fixed and folds no triangle covers every pixel inside that ring exactly once.

Points are in frame pixels, x right, y down.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ned_outlier.reconstruction.topology import EYE_CONTOURS, INNER_LIP_RING, face_oval, face_triangles

N_FACE_VERTICES = 468
# Scale of each anchor ring about the oval's centre: motion fades out up to the first, the rest is a still margin.
ANCHOR_SCALES = (1.3, 1.4)


def strip_triangles(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """(2B, 3) triangles joining two closed loops of B vertex ids each, outer[k] facing inner[k].

    `inner` is ordered like `face_oval` (each edge traversed forward by the mesh inside it); the strip traverses it
    backwards, so the strip is wound like that mesh, and `outer` comes out ordered the same way.
    """
    a, oa = inner, outer
    b, ob = np.roll(inner, -1), np.roll(outer, -1)
    return np.concatenate([np.stack([b, a, oa], axis=1), np.stack([b, oa, ob], axis=1)])


@lru_cache(maxsize=1)
def skirted_triangles() -> np.ndarray:
    """(2 * 36 * R + 898, 3) vertex ids into the points of `skirted_points`: the skirt's strips, ring after ring
    (ring r's vertices are 468 + 36 r + k, k along `face_oval`), then the tessellation. R = len(ANCHOR_SCALES)."""
    oval = face_oval()
    rings = [N_FACE_VERTICES + r * len(oval) + np.arange(len(oval)) for r in range(len(ANCHOR_SCALES))]
    loops = [oval, *rings]
    strips = [strip_triangles(inner, outer) for inner, outer in zip(loops[:-1], loops[1:])]
    return np.concatenate([*strips, face_triangles()])


def anchor_rings(source: np.ndarray) -> np.ndarray:
    """(R * 36, 2) anchor points for the face mesh source (>= 468, 2): the oval scaled about its mean by each of
    ANCHOR_SCALES, ring after ring."""
    oval = source[face_oval()]
    centre = oval.mean(axis=0)
    return np.concatenate([centre + scale * (oval - centre) for scale in ANCHOR_SCALES])


def skirted_points(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source and target face meshes (>= 468, 2+; only vertices 0-467 and x, y are used) -> the vertices of
    `skirted_triangles`, (468 + R * 36, 2) each: the mesh, then the anchor rings (at the same place in both)."""
    anchors = anchor_rings(source[:N_FACE_VERTICES, :2])
    return (
        np.concatenate([source[:N_FACE_VERTICES, :2], anchors]),
        np.concatenate([target[:N_FACE_VERTICES, :2], anchors]),
    )


@lru_cache(maxsize=1)
def slit_triangles() -> np.ndarray:
    """(T,) bool over `skirted_triangles`: the triangles spanning an eye slit or the mouth slit (all three vertices
    on one eye's lid contour, or on the inner-lip ring). Lids and lips may meet or cross there (an eye closing
    further, lips pressing), which is a closing, not a tear, so the fold guard leaves them out."""
    triangles = skirted_triangles()
    rings = [set(contour) for contour in EYE_CONTOURS] + [set(INNER_LIP_RING)]
    return np.array([any(set(t) <= ring for ring in rings) for t in triangles.tolist()])
