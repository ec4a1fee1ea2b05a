"""NED's square face crop as similarity transforms between frame and crop pixels.

    matrices = crop_matrices(track.boxes, CropConfig())        # (T, 2, 3), frame -> crop
    crop = warp_to_crop(frame, matrices[t], 256)               # (256, 256, 3)
    back = warp_to_frame(edited_crop, matrices[t], (W, H))     # (H, W, 3)

Convention (cv2's): pixel centres at integer coordinates, so a W-pixel-wide image covers x in [-0.5, W - 0.5].
A matrix m (2, 3) maps a point p = (x, y) to m[:, :2] @ p + m[:, 2].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropConfig:
    """Settings of the crop.

    size: side of the square crop in pixels.
    margin: context added around the face box, as a fraction of the box side, in total (half on each side). NED
        passes margin=70 at a 256-pixel crop to facenet-pytorch, which adds 70 * side / (256 - 70) in total, i.e.
        70/186 of the side: the box then fills 186 of the 256 crop pixels. The fraction keeps that at any size.
    shift_down: the crop centre moves down by this fraction of the box height (NED's height_recentre).
    """

    size: int = 256
    margin: float = 70 / 186
    shift_down: float = 0.0

    def __post_init__(self) -> None:
        if self.size < 1 or self.margin <= -1.0:
            raise ValueError(f"size must be >= 1 and margin > -1, got {self.size}, {self.margin}")


def crop_matrices(boxes: np.ndarray, config: CropConfig | None = None) -> np.ndarray:
    """Frame -> crop similarity matrices (T, 2, 3) float64 for boxes (T, 4) x0, y0, x1, y1 in frame pixels.

    The crop is the square of side max(w, h) * (1 + margin) centred on the box centre (moved down by
    shift_down * h); its edges map to the crop's pixel-grid edges -0.5 and size - 0.5. NaN boxes give NaN matrices.
    """
    config = config or CropConfig()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2 + config.shift_down * height
    scale = config.size / (np.maximum(width, height) * (1.0 + config.margin))
    crop_centre = (config.size - 1) / 2
    translation = crop_centre - scale[:, None] * np.stack([centre_x, centre_y], axis=1)
    return np.concatenate([scale[:, None, None] * np.eye(2), translation[:, :, None]], axis=2)


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse (..., 2, 3) of affine matrices m (..., 2, 3), e.g. crop -> frame from frame -> crop."""
    m = np.asarray(m, dtype=np.float64)
    linear_inverse = np.linalg.inv(m[..., :2])
    translation = -np.einsum("...ij,...j->...i", linear_inverse, m[..., 2])
    return np.concatenate([linear_inverse, translation[..., None]], axis=-1)


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 2) x, y mapped by the affine matrix m (2, 3): (N, 2) float64."""
    m = np.asarray(m, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]


def warp_to_crop(frame: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The crop (size, size[, C]) of frame (H, W[, C]) under frame -> crop matrix m (2, 3).

    Bilinear; pixels beyond the frame repeat its border (cv2.BORDER_REPLICATE). Pixel centres at integers.
    """
    return cv2.warpAffine(frame, np.asarray(m, np.float64), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def warp_to_frame(crop: np.ndarray, m: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """crop (S, S[, C]) put back into a frame of frame_size (W, H): (H, W[, C]); m (2, 3) maps frame -> crop.

    Bilinear; frame pixels that fall outside the crop are 0, so warp a mask the same way to blend. Pixel centres
    at integers.
    """
    return cv2.warpAffine(crop, np.asarray(m, np.float64), tuple(frame_size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
