"""DECA's face crop: the frame -> crop similarity that makes DECA's (and EMOCA's) 224 x 224 input image.

    m = deca_crop_transform(landmarks=lmk68)      # or box=(x0, y0, x1, y1) from a face detector
    image = deca_input(frame_rgb, m)              # (3, 224, 224) float32 in [0, 1], what DecaEncoder takes

The square, as DECA's test-time loader builds it (EMOCA's uses the same constants):
    side = (width + height) / 2 of the landmarks' bounding box, times 1.1      (landmarks)
    side = (width + height) / 2 of the detector box, centre moved down by 0.12 * side  (detector box)
    size = int(side * scale), scale 1.25; the square of that size about the centre maps onto the crop so that its
    left / top edge goes to pixel 0 and its right / bottom edge to pixel 223 (resolution - 1).
So the box centre lands on (111.5, 111.5) and the square's size spans 223 crop pixels (pixel centre to pixel centre);
`size` is truncated to an integer as DECA does.

Convention (cv2's, as in ned_outlier.face.crop): pixel centres at integer coordinates; a matrix m (2, 3) maps a frame
point p = (x, y) to m[:, :2] @ p + m[:, 2].
"""

from __future__ import annotations

import math

import cv2
import numpy as np

DECA_RESOLUTION = 224
DECA_SCALE = 1.25
LANDMARK_SIDE_FACTOR = 1.1  # landmarks hug the face tighter than a detector box: DECA widens their box by 10%
BOX_SHIFT_DOWN = 0.12  # a detector box sits high on the face: DECA moves its centre down by this fraction of the side


def deca_crop_square(*, box: np.ndarray | None = None, landmarks: np.ndarray | None = None,
                     scale: float = DECA_SCALE) -> tuple[np.ndarray, int]:
    """(centre (2,) float64, size int) of DECA's square crop in frame pixels, from exactly one of `box` (4,)
    x0, y0, x1, y1 (a face detector's box) or `landmarks` (N, 2+) x, y[, z] (the first two columns are used)."""
    if (box is None) == (landmarks is None):
        raise ValueError("give exactly one of box and landmarks")
    if box is not None:
        box = np.asarray(box, dtype=np.float64).reshape(-1)
        if box.shape != (4,):
            raise ValueError(f"box must hold 4 numbers x0, y0, x1, y1, got shape {box.shape}")
        left, top, right, bottom = box
    else:
        points = np.asarray(landmarks, dtype=np.float64)
        if points.ndim != 2 or points.shape[0] < 2 or points.shape[1] < 2:
            raise ValueError(f"landmarks must be (N >= 2, 2 or 3), got shape {points.shape}")
        (left, top), (right, bottom) = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    if not np.isfinite([left, top, right, bottom]).all():
        raise ValueError("the face box or landmarks are not finite")
    side = ((right - left) + (bottom - top)) / 2
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    if box is not None:
        centre[1] += BOX_SHIFT_DOWN * side
    else:
        side *= LANDMARK_SIDE_FACTOR
    size = math.floor(side * scale)
    if size < 1:
        raise ValueError(f"the face is too small for a crop: side {side:g} px, scale {scale:g}")
    return centre, size


def deca_crop_transform(*, box: np.ndarray | None = None, landmarks: np.ndarray | None = None,
                        scale: float = DECA_SCALE, resolution: int = DECA_RESOLUTION) -> np.ndarray:
    """Frame -> crop similarity (2, 3) float64 of DECA's crop (see the module docstring) from exactly one of `box`
    (4,) x0, y0, x1, y1 or `landmarks` (N, 2+); the crop is resolution x resolution pixels."""
    centre, size = deca_crop_square(box=box, landmarks=landmarks, scale=scale)
    factor = (resolution - 1) / size
    corner = centre - size / 2
    return np.array([[factor, 0.0, -factor * corner[0]], [0.0, factor, -factor * corner[1]]])


def deca_input(frame: np.ndarray, m: np.ndarray, resolution: int = DECA_RESOLUTION) -> np.ndarray:
    """DECA's input image (3, resolution, resolution) float32 in [0, 1] from an RGB frame (H, W, 3) (uint8, or
    floats in [0, 1]) under the frame -> crop matrix m (2, 3). Bilinear; outside the frame is black, as in DECA
    (no mean / std normalisation: DECA's encoder takes [0, 1] RGB)."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be RGB (H, W, 3), got shape {frame.shape}")
    image = frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32)
    crop = cv2.warpAffine(image, np.asarray(m, np.float64), (resolution, resolution), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.ascontiguousarray(crop.transpose(2, 0, 1))
