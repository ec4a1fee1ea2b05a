"""Pasting a rendered face back into its frame: a feathered hull mask and Burt-Adelson Laplacian pyramid blending.

Images are (H, W, 3) uint8; masks (H, W) float32 in [0, 1], 1 where the foreground shows. Points are in pixels,
x right, y down, pixel centres at integer coordinates (as in OpenCV). A box (x0, y0, x1, y1) holds the pixels
x0 <= x < x1, y0 <= y < y1.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SUBPIXEL_BITS = 4  # fractional bits of the hull vertices handed to the rasteriser


def hull_mask(points: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """(H, W) float32 mask of the convex hull of points (N, 2), its edge softened by a Gaussian of sigma `feather`
    pixels truncated at r = ceil(2 * feather): about 0.5 on the hull's edge, exactly 1 more than r pixels inside it
    and exactly 0 more than r pixels outside it (r in the max-norm: the kernel is square). Beyond the image's
    sides the hull is taken to continue (edge pixels replicated). feather 0 gives the hard-edged hull.
    """
    height, width = shape
    hull = cv2.convexHull(np.round(np.asarray(points, dtype=np.float64) * (1 << SUBPIXEL_BITS)).astype(np.int32))
    mask = np.zeros((height, width), dtype=np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    if feather <= 0:
        return mask
    size = 2 * math.ceil(2 * feather) + 1
    blurred = cv2.GaussianBlur(mask, (size, size), feather, borderType=cv2.BORDER_REPLICATE)
    return np.clip(blurred, 0.0, 1.0, out=blurred)


def _pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """image (H, W, ...) padded at the bottom and right by reflection to sides that are multiples of `multiple`."""
    height, width = image.shape[:2]
    bottom, right = -height % multiple, -width % multiple
    return cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REFLECT_101)


def gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """[image, then `levels` times halved by cv2.pyrDown]; image (H, W, ...) float32, sides divisible by 2**levels."""
    pyramid = [image]
    for _ in range(levels):
        pyramid.append(cv2.pyrDown(pyramid[-1]))
    return pyramid


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """`levels` band-pass images (each Gaussian level minus the expanded next one), then the coarsest Gaussian
    level; `collapse` inverts it exactly (up to float rounding)."""
    gaussians = gaussian_pyramid(image, levels)
    bands = [fine - _expand(coarse, fine) for fine, coarse in zip(gaussians[:-1], gaussians[1:])]
    return bands + [gaussians[-1]]


def collapse(pyramid: list[np.ndarray]) -> np.ndarray:
    """Sum a Laplacian pyramid back into the full-resolution image."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = band + _expand(image, band)
    return image


def _expand(coarse: np.ndarray, like: np.ndarray) -> np.ndarray:
    """cv2.pyrUp of coarse to the size of `like`, with as many dimensions as `like`."""
    return cv2.pyrUp(coarse, dstsize=(like.shape[1], like.shape[0])).reshape(like.shape)


def laplacian_blend(
    foreground: np.ndarray, background: np.ndarray, mask: np.ndarray, levels: int = 4
) -> np.ndarray:
    """Burt-Adelson multi-band blend of foreground over background (H, W, 3) uint8 with mask (H, W) float32 in
    [0, 1]: each Laplacian band of the two images is mixed by the same level of the mask's Gaussian pyramid, then the
    bands are collapsed. `levels` band-pass levels (NED uses 4); any H, W (padded by reflection, cropped back).

    Computed as background + collapse(G_k(mask) * L_k(foreground - background)), which equals the band-by-band mix
    because the pyramids are linear; so where the mask is 0 throughout the pyramid's support (about 2**levels * 6
    pixels) the output is the background bit-exactly, and where it is 1 throughout, the foreground (to rounding).
    """
    if foreground.shape != background.shape or mask.shape != background.shape[:2]:
        raise ValueError(f"shapes differ: foreground {foreground.shape}, background {background.shape}, "
                         f"mask {mask.shape}")
    height, width = background.shape[:2]
    multiple = 2**levels
    difference = foreground.astype(np.float32) - background.astype(np.float32)
    bands = laplacian_pyramid(_pad_to_multiple(difference, multiple), levels)
    weights = gaussian_pyramid(_pad_to_multiple(mask.astype(np.float32), multiple), levels)
    mixed = [band * weight[:, :, None] for band, weight in zip(bands, weights)]
    change = collapse(mixed)[:height, :width]
    return np.clip(np.rint(background + change), 0, 255).astype(np.uint8)


def blend_region(
    frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], levels: int = 4
) -> np.ndarray:
    """Copy of frame (H, W, 3) uint8 with patch (y1 - y0, x1 - x0, 3) uint8 blended in at box (x0, y0, x1, y1) by
    `laplacian_blend` under mask (y1 - y0, x1 - x0) float32. A box reaching past the frame is clipped (with the
    patch and mask). Only the box is touched; keep the mask 0 near its sides for a seamless result."""
    x0, y0, x1, y1 = box
    if patch.shape[:2] != (y1 - y0, x1 - x0) or mask.shape != patch.shape[:2]:
        raise ValueError(f"patch {patch.shape} and mask {mask.shape} must match the box {box}")
    height, width = frame.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    result = frame.copy()
    if cx0 >= cx1 or cy0 >= cy1:
        return result
    inside = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
    region = (slice(cy0, cy1), slice(cx0, cx1))
    result[region] = laplacian_blend(patch[inside], frame[region], mask[inside], levels)
    return result
