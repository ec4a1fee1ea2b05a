"""The square crop: exact inverse mappings, warps that agree with the matrices, NED's margin."""

import numpy as np
import pytest

from ned_outlier.face.crop import (
    CropConfig,
    apply_affine,
    crop_matrices,
    invert_affine,
    warp_to_crop,
    warp_to_frame,
)

FRAME_SIZE = (640, 360)  # W, H


def random_boxes(count: int, seed: int = 0) -> np.ndarray:
    """(count, 4) boxes of 40-300 px, not square, inside a 640x360 frame."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(40, 300, (count, 2))
    corner = rng.uniform(0, 300, (count, 2))
    return np.concatenate([corner, corner + size], axis=1)


def gaussian_dot(centre: tuple[float, float], sigma: float) -> np.ndarray:
    """A float32 (H, W, 3) frame, black but for a Gaussian dot at centre (x, y)."""
    ys, xs = np.mgrid[: FRAME_SIZE[1], : FRAME_SIZE[0]]
    dot = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    return np.repeat(dot[..., None], 3, axis=2).astype(np.float32)


def centroid(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (x, y) of image (H, W, C)."""
    weight = image[..., 0].astype(np.float64)
    ys, xs = np.mgrid[: weight.shape[0], : weight.shape[1]]
    return np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()


def test_points_round_trip_frame_crop_frame_exactly():
    matrices = crop_matrices(random_boxes(50), CropConfig(size=224, shift_down=0.1))
    points = np.random.default_rng(1).uniform(-100, 700, (30, 2))
    for m in matrices:
        back = apply_affine(invert_affine(m), apply_affine(m, points))
        np.testing.assert_allclose(back, points, atol=1e-9, rtol=0)


def test_invert_affine_is_batched_and_composes_to_identity():
    matrices = crop_matrices(random_boxes(7))
    inverses = invert_affine(matrices)
    assert inverses.shape == (7, 2, 3)
    for m, inverse in zip(matrices, inverses):
        composed = np.vstack([m, [0, 0, 1]]) @ np.vstack([inverse, [0, 0, 1]])
        np.testing.assert_allclose(composed, np.eye(3), atol=1e-12)


def test_crop_is_a_uniform_scale_square_holding_the_box_with_its_margin():
    config = CropConfig(size=256)
    boxes = random_boxes(20)
    matrices = crop_matrices(boxes, config)
    assert matrices.shape == (20, 2, 3) and matrices.dtype == np.float64
    np.testing.assert_array_equal(matrices[:, 0, 0], matrices[:, 1, 1])
    np.testing.assert_array_equal(matrices[:, [0, 1], [1, 0]], 0.0)
    for box, m in zip(boxes, matrices):
        corners = apply_affine(m, box.reshape(2, 2))  # (x0, y0), (x1, y1) in the crop
        extent = corners[1] - corners[0]
        # the long side of the box spans size / (1 + margin) crop pixels, centred: margin / 2 on each side
        np.testing.assert_allclose(extent.max(), 256 / (1 + config.margin), rtol=1e-12)
        np.testing.assert_allclose(corners.mean(axis=0), (256 - 1) / 2, atol=1e-9)
        assert np.all(corners >= -0.5) and np.all(corners <= 256 - 0.5)


def test_ned_margin_makes_a_186_pixel_box_a_256_pixel_crop_without_scaling():
    (m,) = crop_matrices(np.array([[100.0, 50.0, 286.0, 236.0]]))
    np.testing.assert_allclose(m[:, :2], np.eye(2), atol=1e-12)


def test_shift_down_moves_the_crop_centre_by_a_fraction_of_the_box_height():
    box = np.array([[100.0, 50.0, 200.0, 250.0]])  # 100 wide, 200 high
    (plain,) = crop_matrices(box, CropConfig(size=100))
    (shifted,) = crop_matrices(box, CropConfig(size=100, shift_down=0.1))
    centre_plain, centre_shifted = apply_affine(invert_affine(plain), [[49.5, 49.5]]), apply_affine(
        invert_affine(shifted), [[49.5, 49.5]]
    )
    np.testing.assert_allclose(centre_shifted - centre_plain, [[0.0, 20.0]], atol=1e-9)


def test_nan_box_gives_nan_matrix():
    assert np.isnan(crop_matrices(np.full((1, 4), np.nan))).all()


@pytest.mark.parametrize("box", [[300.0, 100.0, 400.0, 230.0], [150.0, 20.0, 500.0, 340.0]])  # zoom in, zoom out
def test_warp_to_crop_puts_a_dot_where_apply_affine_says(box):
    dot = (347.3, 151.8)
    (m,) = crop_matrices(np.array([box]), CropConfig(size=128))
    sigma = 3.0 / min(m[0, 0], 1.0)  # at least 3 px wide in the crop too
    crop = warp_to_crop(gaussian_dot(dot, sigma), m, 128)
    assert crop.shape == (128, 128, 3)
    np.testing.assert_allclose(centroid(crop), apply_affine(m, [dot])[0], atol=0.05)


def test_warp_to_frame_inverts_warp_to_crop_inside_the_crop():
    (m,) = crop_matrices(np.array([[300.0, 100.0, 400.0, 230.0]]), CropConfig(size=256))  # zoom in by ~1.4
    frame = (gaussian_dot((350.0, 160.0), 30.0) * 255).astype(np.uint8)
    back = warp_to_frame(warp_to_crop(frame, m, 256), m, FRAME_SIZE)
    assert back.shape == frame.shape and back.dtype == np.uint8
    inside = apply_affine(m, [[0, 0]])  # the frame's top-left corner is far outside the crop
    assert (inside < -0.5).all() and (back[0, 0] == 0).all()
    region = (slice(120, 200), slice(310, 390))
    assert np.abs(back[region].astype(int) - frame[region]).max() <= 2
