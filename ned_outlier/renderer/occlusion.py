"""Hands in front of the face: where the edit must leave the source alone.

A warp moves whatever pixels lie over the mesh, fingers included. With the hands the reconstruction stores
(`FaceParams.hands`, MediaPipe Hands' 21 landmarks per hand in frame pixels, NaN where absent) the editor can

- keep the source's pixels over each hand: `hand_mask` (1 over the hand, feathered out to 0), composited as
  mask * source + (1 - mask) * edited;
- keep the face next to a hand from sliding against it: `vertex_weights` (0 at mesh points under or near a hand,
  rising smoothly to 1 farther away), multiplied into each mesh vertex's displacement;
- on frames flagged with a hand over the mouth whose hand has no outline (MediaPipe Hands found it on the frames
  around, not on this one: `FaceParams.mouth_occluded` without `hands`), hold the lower face still around the lips
  (`mouth_hold_weights`), so that whatever covers the mouth is not warped with it.

A hand's silhouette is the union of thick segments along its bones (`HAND_BONES`) and its palm polygon (`PALM`),
the thickness a fraction of the hand's size (`hand_size`): a convex hull of the 21 points would also cover the
face between spread fingers. Coordinates follow cv2: pixel centres at integer coordinates, x right, y down.

    config = OcclusionConfig()
    grow, feather, margin = config.in_pixels(face_width(params.landmarks[t]))
    mask = hand_mask(params.hands[t], (H, W), grow, feather)                    # (H, W) float32
    weights = vertex_weights(params.vertices[t, :, :2], params.hands[t], (H, W), margin)   # (V,) float32
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from ned_outlier.reconstruction.edit_basis import smoothstep

# MediaPipe Hands' connections: thumb, index, middle, ring, pinky (each from its base), and across the knuckles.
HAND_BONES = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (9, 10), (10, 11), (11, 12),
    (13, 14), (14, 15), (15, 16),
    (0, 17), (17, 18), (18, 19), (19, 20),
    (5, 9), (9, 13), (13, 17),
)  # fmt: skip
PALM = (0, 1, 5, 9, 13, 17)  # filled: wrist, thumb base, the four knuckles
BONE_RADIUS = 0.12  # half the thickness of a bone segment, as a fraction of `hand_size`
_SHIFT = 4  # cv2 drawing with 1/16-pixel vertex precision


@dataclass(frozen=True)
class OcclusionConfig:
    """How the edit keeps away from hands. grow, feather and margin are fractions of the face width (`face_width`,
    the horizontal extent of the face mesh), so that they scale with the face's size in the frame.

    enabled: off = hands are ignored (the edit as before).
    bone_radius: half the thickness of the hand's bone segments, as a fraction of the hand's size (`hand_size`).
    grow: the pixel mask covers the silhouette grown by this much ...
    feather: ... and then fades to 0 over this much more (Gaussian).
    margin: mesh points within this distance of the silhouette do not move; the motion comes back in full
        (smoothstep) at twice this distance. Keep margin >= grow + feather: the mask then fades out where the
        mesh does not move yet, so the edge of the mask shows no seam.
    unseen_reach: on a frame with a hand over the mouth but no outline of it, mesh points within this distance of
        the outer lips do not move, fully again at twice it (0: such frames are edited as if nothing were there).
    Defaults chosen by eye on the Pexels clip's hand-to-mouth frames (a face 200-240 px wide, median 218: grow
    4.4 px, feather 8.7 px, margin 13 px; the silhouette is then a few pixels wider than the fingers, which covers
    the jitter of landmarks found on a 256-pixel face crop).
    """

    enabled: bool = True
    bone_radius: float = BONE_RADIUS
    grow: float = 0.02
    feather: float = 0.04
    margin: float = 0.06
    unseen_reach: float = 0.2

    def in_pixels(self, face_width_px: float) -> "OcclusionPixels":
        """grow, feather and margin in pixels for a face `face_width_px` wide."""
        return OcclusionPixels(self.grow * face_width_px, self.feather * face_width_px, self.margin * face_width_px)


class OcclusionPixels(NamedTuple):
    grow_px: float
    feather_px: float
    margin_px: float


def face_width(points: np.ndarray) -> float:
    """Horizontal extent (pixels) of a face mesh `points` (V, 2 or 3); NaN points ignored (0 when none)."""
    x = np.asarray(points)[:, 0]
    x = x[np.isfinite(x)]
    return float(np.ptp(x)) if len(x) else 0.0


def present_hands(hands: np.ndarray) -> np.ndarray:
    """hands (K, 21, 2) -> the hands whose 21 landmarks are all finite, (K', 21, 2) float64."""
    hands = np.asarray(hands, dtype=np.float64).reshape(-1, 21, 2)
    return hands[np.isfinite(hands).all(axis=(1, 2))]


def hand_size(hand: np.ndarray) -> float:
    """A hand's size in pixels: the wrist-to-middle-knuckle length, or 1.2 x the index-to-pinky knuckle width when
    that is larger (a hand seen along its length, where the first is foreshortened)."""
    return float(max(np.linalg.norm(hand[9] - hand[0]), 1.2 * np.linalg.norm(hand[17] - hand[5])))


def _draw(canvas: np.ndarray, hands: np.ndarray, origin: np.ndarray, grow_px: float, bone_radius: float,
          value: int = 255) -> None:
    """Draws each hand's silhouette grown by grow_px, in `value`, into the uint8 canvas whose pixel (0, 0) is
    frame pixel `origin` (x, y)."""
    for hand in hands:
        # cv2 draws a line of odd thickness t >= 3 over the pixels within (t + 1) / 2 of it
        thickness = max(1, 2 * int(round(bone_radius * hand_size(hand) + grow_px)) - 1)
        points = np.round((hand - origin) * (1 << _SHIFT)).astype(np.int32)
        palm = points[list(PALM)]
        cv2.fillPoly(canvas, [palm], value, cv2.LINE_8, _SHIFT)
        cv2.polylines(canvas, [palm], True, value, thickness, cv2.LINE_8, _SHIFT)
        for start, stop in HAND_BONES:
            cv2.line(canvas, tuple(points[start]), tuple(points[stop]), value, thickness, cv2.LINE_8, _SHIFT)


def _reach(hands: np.ndarray, bone_radius: float) -> float:
    """How far (pixels) a silhouette extends beyond its landmarks, at most."""
    return max(bone_radius * hand_size(hand) for hand in hands) + 1.0


def hand_mask(hands: np.ndarray, shape: tuple[int, int], grow_px: float = 4.0, feather_px: float = 8.0,
              bone_radius: float = BONE_RADIUS) -> np.ndarray:
    """hands (K, 21, 2) frame pixels (NaN rows: absent) -> (H, W) float32 in [0, 1], shape = (H, W).

    The union of the hands' silhouettes is grown by grow_px + feather_px / 2 and blurred with a Gaussian of
    sigma feather_px / 4: the mask is >= 0.977 over the silhouette grown by grow_px, 0.5 at grow_px +
    feather_px / 2 and <= 0.023 beyond grow_px + feather_px. All zero without a hand. Only a box around the
    hands is drawn and blurred.
    """
    height, width = shape
    mask = np.zeros((height, width), dtype=np.float32)
    hands = present_hands(hands)
    if len(hands) == 0:
        return mask
    feather_px = max(float(feather_px), 0.0)
    sigma = feather_px / 4
    pad = _reach(hands, bone_radius) + max(grow_px, 0.0) + 1.5 * feather_px + 2  # 4 sigma beyond what is drawn
    x0, y0 = np.floor(hands.reshape(-1, 2).min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(hands.reshape(-1, 2).max(axis=0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x0 >= x1 or y0 >= y1:
        return mask  # the hands are wholly outside the frame
    box = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    _draw(box, hands, np.array([x0, y0], dtype=np.float64), max(grow_px, 0.0) + feather_px / 2, bone_radius)
    box = box.astype(np.float32) * np.float32(1 / 255)
    if sigma > 0:
        # Replicated borders: a hand cut by the frame's edge goes on beyond it; the box's other edges lie 4 sigma
        # beyond anything drawn.
        box = cv2.GaussianBlur(box, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    mask[y0:y1, x0:x1] = box
    return mask


def vertex_weights(points: np.ndarray, hands: np.ndarray, shape: tuple[int, int], margin_px: float = 12.0,
                   bone_radius: float = BONE_RADIUS) -> np.ndarray:
    """points (N, 2) and hands (K, 21, 2), frame pixels, in a frame of shape (H, W) -> (N,) float32 in [0, 1].

    With d a point's distance to the nearest hand silhouette (0 inside; the silhouette of `hand_mask`, not grown,
    not feathered): 0 for d <= margin_px, smoothstep((d - margin_px) / margin_px) up to 1 at d >= 2 * margin_px.
    All ones without a hand, and for NaN points. The distance transform (exact Euclidean, sampled bilinearly) runs
    on a box only: where the points, padded by 2 * margin_px, overlap the hands, padded by their silhouettes'
    reach + 2 * margin_px (outside it every distance exceeds 2 * margin_px: weight 1), bounded by the frame grown
    by half its larger side (points beyond it: 1).
    """
    points = np.asarray(points, dtype=np.float64)[:, :2]
    weights = np.ones(len(points), dtype=np.float32)
    hands = present_hands(hands)
    finite = np.isfinite(points).all(axis=1)
    if len(hands) == 0 or not finite.any():
        return weights
    margin_px = max(float(margin_px), 0.0)
    pad = 2 * margin_px + 2
    height, width = shape
    bound = max(height, width) / 2
    hand_points = hands.reshape(-1, 2)
    reach = _reach(hands, bone_radius) + pad
    low = np.maximum.reduce([points[finite].min(axis=0) - pad, hand_points.min(axis=0) - reach, [-bound, -bound]])
    high = np.minimum.reduce([points[finite].max(axis=0) + pad, hand_points.max(axis=0) + reach,
                              [width - 1 + bound, height - 1 + bound]])
    if (low > high).any():
        return weights  # the hands are far from every point (or every point is far outside the frame)
    x0, y0 = np.floor(low).astype(int)
    x1, y1 = np.ceil(high).astype(int) + 1
    box = np.full((y1 - y0, x1 - x0), 255, dtype=np.uint8)  # distanceTransform: distance to the nearest 0
    _draw(box, hands, np.array([x0, y0], dtype=np.float64), 0.0, bone_radius, value=0)
    inside = finite & (points >= [x0, y0]).all(axis=1) & (points <= [x1 - 1, y1 - 1]).all(axis=1)
    if box.all() or not inside.any():
        return weights
    distance = cv2.distanceTransform(box, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d = _bilinear(distance, points[inside] - [x0, y0])
    if margin_px == 0:
        weights[inside] = d > 0
    else:
        weights[inside] = smoothstep((d - margin_px) / margin_px)
    return weights


def mouth_hold_weights(points: np.ndarray, lips: np.ndarray, reach_px: float) -> np.ndarray:
    """points (N, 2) and the outer lips (L, 2), frame pixels -> (N,) float32 in [0, 1]: with d a point's distance to
    the lips' convex hull (0 inside it), 0 for d <= reach_px, smoothstep((d - reach_px) / reach_px) up to 1 at
    d >= 2 * reach_px; all ones for reach_px <= 0."""
    points = np.asarray(points, dtype=np.float64)[:, :2]
    if reach_px <= 0:
        return np.ones(len(points), dtype=np.float32)
    polygon = cv2.convexHull(np.ascontiguousarray(lips, dtype=np.float32))
    signed = np.array([cv2.pointPolygonTest(polygon, (float(x), float(y)), True) for x, y in points])
    distance = np.maximum(-signed, 0.0)  # pointPolygonTest is positive inside
    return smoothstep((distance - reach_px) / reach_px).astype(np.float32)


def _bilinear(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """image (h, w) sampled at points (N, 2) x, y (clamped to the image) -> (N,) float64."""
    height, width = image.shape
    x = np.clip(points[:, 0], 0, width - 1)
    y = np.clip(points[:, 1], 0, height - 1)
    ix = np.minimum(np.floor(x).astype(int), width - 2) if width > 1 else np.zeros(len(x), int)
    iy = np.minimum(np.floor(y).astype(int), height - 2) if height > 1 else np.zeros(len(y), int)
    fx, fy = x - ix, y - iy
    jx, jy = np.minimum(ix + 1, width - 1), np.minimum(iy + 1, height - 1)
    top = image[iy, ix] * (1 - fx) + image[iy, jx] * fx
    bottom = image[jy, ix] * (1 - fx) + image[jy, jx] * fx
    return top * (1 - fy) + bottom * fy
