"""Piecewise-affine mesh warp: move an image's pixels so that mesh points go from `source` to `target`.

Triangles are fixed in SOURCE space (the tessellation plus a skirt of fixed anchors, `renderer.mesh`); the target is
never re-triangulated. Backward mapping: every output pixel inside a target triangle takes the colour at the source
position given by that triangle's affine map (target -> source), sampled by `resample` (a 2x sinc upsampling, then
bicubic).

Coordinates are in pixels, x right, y down, pixel centres at integer coordinates (as in OpenCV). A region of
interest (ROI) is a box (x0, y0, x1, y1) of pixels x0 <= x < x1, y0 <= y < y1.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ned_outlier.reconstruction.topology import triangle_edges
from ned_outlier.renderer.mesh import N_FACE_VERTICES, skirted_points, skirted_triangles, slit_triangles

# A triangle counts as folded when it turns over by more than this area (pixels^2). Slivers at the mouth and eye
# corners (source areas under 2 px^2) turn over by 0.5-2.5 px^2 under a 5-6 px smile or eye opening: invisible.
FOLD_TOLERANCE = 4.0
# A source triangle whose area is below this fraction of its squared edge lengths counts as collapsed: its map
# ignores the direction it has (almost) no extent in instead of blowing up across it.
DEGENERATE_RCOND = 1e-3
SUBPIXEL_BITS = 4  # fractional bits of the vertex coordinates handed to the rasteriser
# Resampling of the warp (`resample`): the source region is upsampled 2x by a windowed sinc (Lanczos, a = 8: 16 taps)
# at the half-pixel positions, then sampled bicubically at twice the mapped coordinates. A kernel of a few taps
# softens what it shifts by a fraction of a pixel; the long sinc keeps that content, and on the 2x-oversampled image
# the bicubic is nearly flat. `python benchmarks/resampling.py` (sharpness = mean |Laplacian| over the face,
# resampled / source, 10 frames of the packaged clips; a half-pixel shift / a smooth field of up to 4 px): Lanczos-4
# alone 0.933 / 0.969, this 0.985 / 1.011, the ideal band-limited shift 1.058 / -; 7.8-9.1 ms per 300 x 300 region
# against Lanczos-4's 5.9-6.1 (three runs; an earlier one 6.4 against 5.0).
UPSAMPLE_LOBES = 8


def signed_areas(triangles: np.ndarray) -> np.ndarray:
    """(..., 3, 2) vertex coordinates -> (...) signed areas; the sign flips when a triangle is mirrored."""
    edge1 = triangles[..., 1, :] - triangles[..., 0, :]
    edge2 = triangles[..., 2, :] - triangles[..., 0, :]
    return 0.5 * (edge1[..., 0] * edge2[..., 1] - edge1[..., 1] * edge2[..., 0])


def triangle_affines(src_tri: np.ndarray, dst_tri: np.ndarray) -> np.ndarray:
    """(T, 3, 2) source and destination triangles -> (T, 2, 3) affine maps A with A @ [x, y, 1] = destination for
    each source vertex (x, y).

    Exact for proper triangles. A (near-)collapsed source triangle, thinner than DEGENERATE_RCOND times its size,
    gets the least-squares map that ignores the direction it has no extent in, so the map stays finite and tame.
    """
    src_tri = np.asarray(src_tri, dtype=np.float64)
    dst_tri = np.asarray(dst_tri, dtype=np.float64)
    src_edges = np.swapaxes(src_tri[:, 1:] - src_tri[:, :1], 1, 2)  # (T, 2, 2), the edges from vertex 0 as columns
    dst_edges = np.swapaxes(dst_tri[:, 1:] - dst_tri[:, :1], 1, 2)
    det = src_edges[:, 0, 0] * src_edges[:, 1, 1] - src_edges[:, 0, 1] * src_edges[:, 1, 0]
    proper = np.abs(det) > DEGENERATE_RCOND * (src_edges**2).sum(axis=(1, 2))
    adjugate = np.stack([src_edges[:, 1, 1], -src_edges[:, 0, 1], -src_edges[:, 1, 0], src_edges[:, 0, 0]], axis=1)
    inverse = adjugate.reshape(-1, 2, 2) / np.where(proper, det, 1.0)[:, None, None]
    linear = dst_edges @ inverse
    linear[~proper] = _least_squares_linear(src_tri[~proper], dst_tri[~proper])
    offset = dst_tri.mean(axis=1) - np.einsum("tij,tj->ti", linear, src_tri.mean(axis=1))  # centroid to centroid
    return np.concatenate([linear, offset[:, :, None]], axis=2)


def _least_squares_linear(src_tri: np.ndarray, dst_tri: np.ndarray) -> np.ndarray:
    """(T, 2, 2) linear parts of the least-squares affine maps of src_tri (T, 3, 2) onto dst_tri about their
    centroids, small singular values dropped (DEGENERATE_RCOND)."""
    src_centred = src_tri - src_tri.mean(axis=1, keepdims=True)
    dst_centred = dst_tri - dst_tri.mean(axis=1, keepdims=True)
    return np.swapaxes(np.linalg.pinv(src_centred, rcond=DEGENERATE_RCOND) @ dst_centred, 1, 2)


def folded(src_tri: np.ndarray, dst_tri: np.ndarray, tolerance: float = FOLD_TOLERANCE) -> np.ndarray:
    """(T,) bool: triangles facing the mesh's front in src_tri (T, 3, 2) that are turned over in dst_tri by more
    than `tolerance` pixels^2. The front is the orientation of the mesh's total signed area.

    Triangles already folded in the source (the far side of a turned cheek, the inner lips of a closed mouth) may
    stay folded or unfold: they are part of the projected 3D surface, not tearing made by the edit.
    """
    src_area = signed_areas(src_tri)
    front = np.sign(src_area.sum()) or 1.0
    return (front * src_area > 0) & (front * signed_areas(dst_tri) < -tolerance)


def safe_fraction(src_tri: np.ndarray, dst_tri: np.ndarray, steps: int = 12) -> float:
    """Largest t in [0, 1] (to 2**-steps, by bisection) such that moving the vertices of src_tri (T, 3, 2) by t times
    their displacement to dst_tri (T, 3, 2) folds no triangle (`folded`); 1.0 when the full move folds none."""
    if not folded(src_tri, dst_tri).any():
        return 1.0
    move = dst_tri - src_tri
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = 0.5 * (low + high)
        if folded(src_tri, src_tri + middle * move).any():
            high = middle
        else:
            low = middle
    return low


def draw_order(src_tri: np.ndarray, dst_tri: np.ndarray) -> np.ndarray:
    """(T,) triangle indices in rasterising order (later ones win where target triangles overlap or share edge
    pixels): triangles folded in the source first, then the rest from the most compressed by the warp to the least,
    so the edge pixels of a squashed triangle, whose map magnifies, go to its better-conditioned neighbours."""
    src_area, dst_area = signed_areas(src_tri), signed_areas(dst_tri)
    front = np.sign(src_area.sum()) or 1.0
    magnification = np.abs(src_area) / np.maximum(np.abs(dst_area), 1e-6)
    return np.lexsort((-magnification, front * src_area > 0))


def rasterise_ids(dst_tri: np.ndarray, order: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) int32 image: at each pixel the index of the triangle of dst_tri (T, 3, 2), in the image's pixel
    coordinates, drawn last over it in `order`; T where no triangle covers it."""
    ids = np.full(shape, len(dst_tri), dtype=np.int32)
    vertices = np.round(dst_tri * (1 << SUBPIXEL_BITS)).astype(np.int32)
    for index in order.tolist():
        cv2.fillConvexPoly(ids, vertices[index], index, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return ids


def backward_maps(affines: np.ndarray, ids: np.ndarray, origin: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Source positions (map_x, map_y), (h, w) float32 each, of the pixels of an ROI whose top-left pixel is at
    `origin` (x0, y0): pixel (x, y) takes affines[ids[y, x]] (T + 1, 2, 3) applied to its absolute (x, y)."""
    height, width = ids.shape
    planes = np.ascontiguousarray(affines.reshape(len(affines), 6).T, dtype=np.float32)
    a, b, c, d, e, f = np.take(planes, ids, axis=1)  # six (h, w) coefficient planes
    xs = np.arange(origin[0], origin[0] + width, dtype=np.float32)[None, :]
    ys = np.arange(origin[1], origin[1] + height, dtype=np.float32)[:, None]
    return a * xs + b * ys + c, d * xs + e * ys + f


@lru_cache(maxsize=1)
def half_pixel_kernel(lobes: int = UPSAMPLE_LOBES) -> np.ndarray:
    """(2 * lobes,) float32 Lanczos weights of the samples at offsets -lobes + 1 .. lobes for the value half a pixel
    past offset 0, normalised to sum 1 (a constant stays constant)."""
    offsets = np.arange(-lobes + 1, lobes + 1) - 0.5
    weights = np.sinc(offsets) * np.sinc(offsets / lobes)
    return (weights / weights.sum()).astype(np.float32)


def upsample_2x(image: np.ndarray, lobes: int = UPSAMPLE_LOBES) -> np.ndarray:
    """image (h, w, C) -> (2h, 2w, C) float32 whose even rows and columns are the image's samples and whose odd ones
    are the windowed-sinc values half a pixel past them (`half_pixel_kernel`; the image's edge replicated)."""
    image = image.astype(np.float32)
    kernel, one = half_pixel_kernel(lobes), np.ones(1, np.float32)

    def half_step(values: np.ndarray, axis: int) -> np.ndarray:
        kx, ky, anchor = (kernel, one, (lobes - 1, 0)) if axis == 1 else (one, kernel, (0, lobes - 1))
        return cv2.sepFilter2D(values, -1, kx, ky, anchor=anchor, borderType=cv2.BORDER_REPLICATE)

    height, width = image.shape[:2]
    right = half_step(image, 1)
    up = np.empty((2 * height, 2 * width, *image.shape[2:]), np.float32)
    up[0::2, 0::2], up[0::2, 1::2] = image, right
    up[1::2, 0::2], up[1::2, 1::2] = half_step(image, 0), half_step(right, 0)
    return up


def resample(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """image (H, W[, C]) sampled at (map_x, map_y), (h, w) float32 source positions each, as `cv2.remap` with
    BORDER_REPLICATE: the box of the image the maps reach (plus the sinc's reach) upsampled 2x (`upsample_2x`), then
    sampled bicubically at twice the coordinates. Exact at integer positions; the result has image's dtype
    (integers rounded and clipped)."""
    height, width = image.shape[:2]
    reach = UPSAMPLE_LOBES + 2
    x0 = int(np.clip(np.floor(map_x.min()) - reach, 0, width - 1))
    y0 = int(np.clip(np.floor(map_y.min()) - reach, 0, height - 1))
    x1 = int(np.clip(np.ceil(map_x.max()) + reach + 1, x0 + 1, width))
    y1 = int(np.clip(np.ceil(map_y.max()) + reach + 1, y0 + 1, height))
    up = upsample_2x(image[y0:y1, x0:x1])
    # Outside the box the nearest box pixel is the image's nearest pixel: the box is clipped only at the image edge.
    sampled = cv2.remap(up, 2 * (map_x - x0), 2 * (map_y - y0), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    if np.issubdtype(image.dtype, np.integer):
        limits = np.iinfo(image.dtype)
        return np.clip(np.rint(sampled), limits.min, limits.max).astype(image.dtype)
    return sampled.astype(image.dtype)


def warp_triangles(
    image: np.ndarray,
    src_points: np.ndarray,
    dst_points: np.ndarray,
    triangles: np.ndarray,
    roi: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Warp `image` (H, W, C) so that src_points (N, 2) (image pixels) land on dst_points (N, 2), over `triangles`
    (T, 3) vertex ids, rendering only the box `roi` (x0, y0, x1, y1) of destination coordinates.

    Returns the warped ROI (y1 - y0, x1 - x0, C) of image's dtype and its coverage (y1 - y0, x1 - x0) bool: True
    where a destination triangle covers the pixel. Uncovered pixels hold the image's own pixel at the same
    coordinates (BORDER_REPLICATE beyond its edge). Sampled by `resample` (exact where the map is the identity).
    """
    x0, y0, x1, y1 = roi
    src_tri = np.asarray(src_points, dtype=np.float64)[triangles]
    dst_tri = np.asarray(dst_points, dtype=np.float64)[triangles]
    identity = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    affines = np.concatenate([triangle_affines(dst_tri, src_tri), identity])  # (T + 1, 2, 3), last for "none"
    ids = rasterise_ids(dst_tri - [x0, y0], draw_order(src_tri, dst_tri), (y1 - y0, x1 - x0))
    map_x, map_y = backward_maps(affines, ids, (x0, y0))
    warped = resample(image, map_x, map_y)
    return warped.reshape(y1 - y0, x1 - x0, *image.shape[2:]), ids < len(triangles)


def face_roi(points: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the pixel centres within points (N, 2)' extent, clipped to an image of
    `shape` (H, W, ...); may be empty (x0 >= x1 or y0 >= y1) when the points lie outside the image."""
    low = np.maximum(np.floor(points.min(axis=0)).astype(int), 0)
    high = np.minimum(np.ceil(points.max(axis=0)).astype(int) + 1, [shape[1], shape[0]])
    return int(low[0]), int(low[1]), int(high[0]), int(high[1])


def moving_roi(src_points: np.ndarray, dst_points: np.ndarray, triangles: np.ndarray,
               shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """`face_roi` of the vertices (source and target positions) of every triangle (T, 3) with a vertex that moves by
    more than 1/1000 pixel: outside it every triangle maps by the identity. Empty when nothing moves."""
    moves = np.abs(dst_points - src_points).max(axis=1) > 1e-3
    touched = np.unique(triangles[moves[triangles].any(axis=1)])
    if len(touched) == 0:
        return 0, 0, 0, 0
    return face_roi(np.concatenate([src_points[touched], dst_points[touched]]), shape)


def _checked(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two meshes as float64 arrays; ValueError unless both are (>= 468, 2+) with finite face vertices."""
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or len(source) < N_FACE_VERTICES or source.shape[1] < 2:
        raise ValueError(f"source and target must both be (>= 468, 2+) meshes, got {source.shape} and {target.shape}")
    face = slice(0, N_FACE_VERTICES)
    if not (np.isfinite(source[face, :2]).all() and np.isfinite(target[face, :2]).all()):
        raise ValueError("face mesh points must be finite")
    return source, target


def max_safe_fraction(source: np.ndarray, target: np.ndarray) -> float:
    """Largest t in [0, 1] such that the face mesh moved to source + t * (target - source) folds no triangle of the
    tessellation or of its anchor skirt, the eye and mouth slits excepted (`slit_triangles`); source, target
    (478, 2) frame pixels (468+ rows, x, y used)."""
    src_points, dst_points = skirted_points(*_checked(source, target))
    guarded, _ = _guarded_mesh()
    return safe_fraction(src_points[guarded], dst_points[guarded])


# Local fold limiting: each round scales the moves of the vertices of folded triangles by LOCAL_SHRINK and lets the
# reduction spread to mesh neighbours (one smoothing step that only lowers), so a fold at a lid corner lowers the
# edit around that corner instead of the whole face.
LOCAL_SHRINK = 0.7
LOCAL_ROUNDS = 12


def _neighbour_mean(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(V,) values -> (V,) mean over each vertex's mesh neighbours (`edges` (E, 2)); isolated vertices keep theirs."""
    total = np.bincount(edges[:, 0], values[edges[:, 1]], len(values)) + np.bincount(
        edges[:, 1], values[edges[:, 0]], len(values))
    degree = np.bincount(edges.ravel(), minlength=len(values))
    return np.where(degree > 0, total / np.maximum(degree, 1), values)


def local_move_scales(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(468,) factors in [0, 1] for the moves of the face mesh's vertices from source to target ((>= 468, 2+)
    frame pixels) such that source + factors * (target - source) folds no guarded triangle (as in
    `max_safe_fraction`). Scales only where triangles fold, spreading smoothly to their neighbourhood
    (LOCAL_SHRINK per round, LOCAL_ROUNDS rounds); if folds remain after that, every factor is multiplied by the
    largest safe global fraction."""
    source, target = _checked(source, target)
    triangles, edges = _guarded_mesh()
    src_points, dst_points = skirted_points(source, target)
    move = dst_points - src_points
    scales = np.ones(len(src_points))
    anchors = slice(N_FACE_VERTICES, None)  # the skirt's anchors never move
    for _ in range(LOCAL_ROUNDS):
        bad = folded(src_points[triangles], (src_points + scales[:, None] * move)[triangles])
        if not bad.any():
            break
        scales[np.unique(triangles[bad])] *= LOCAL_SHRINK
        scales = np.minimum(scales, _neighbour_mean(scales, edges))
        scales[anchors] = 1.0
    scaled = src_points + scales[:, None] * move
    scales *= safe_fraction(src_points[triangles], scaled[triangles])
    return scales[:N_FACE_VERTICES]


@lru_cache(maxsize=1)
def _guarded_mesh() -> tuple[np.ndarray, np.ndarray]:
    """The triangles the fold guard checks (skirted mesh, slits excepted) and their unique edges (E, 2)."""
    triangles = skirted_triangles()[~slit_triangles()]
    return triangles, triangle_edges(triangles)


def warp_face(frame: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """frame (H, W, 3) uint8 with its face moved from mesh `source` to mesh `target`, each (478, 2) frame pixels
    (rows 0-467, x and y, are used: the irises 468-477 are not in the tessellation).

    The displacement is first scaled down by `max_safe_fraction` when the full move would fold a triangle. The motion
    fades to zero at the first anchor ring; pixels more than a pixel outside it are returned unchanged (bit-exact:
    the strip out to the last ring maps by the identity, and nothing beyond it is touched). The input frame is not
    modified.
    """
    source, target = _checked(source, target)
    src_points, dst_points = skirted_points(source, target)
    triangles = skirted_triangles()
    dst_points = src_points + max_safe_fraction(source, target) * (dst_points - src_points)
    x0, y0, x1, y1 = roi = moving_roi(src_points, dst_points, triangles, frame.shape)
    result = frame.copy()
    if x0 < x1 and y0 < y1:
        result[y0:y1, x0:x1] = warp_triangles(frame, src_points, dst_points, triangles, roi)[0]
    return result
