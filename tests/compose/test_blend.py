"""Hull masks and Laplacian pyramid blending: the limits (mask 0 or 1), a smooth seam, odd sizes, regions."""

import cv2
import numpy as np
import pytest

from ned_outlier.compose.blend import blend_region, hull_mask, laplacian_blend


def random_images(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(2))


@pytest.mark.parametrize("shape", [(64, 64), (61, 47), (5, 3)])
def test_mask_of_ones_gives_the_foreground_and_zeros_the_background(shape):
    foreground, background = random_images(shape)
    ones, zeros = np.ones(shape, np.float32), np.zeros(shape, np.float32)
    assert np.abs(laplacian_blend(foreground, background, ones).astype(int) - foreground).max() <= 1
    np.testing.assert_array_equal(laplacian_blend(foreground, background, zeros), background)


def test_a_hard_seam_between_flat_colours_becomes_a_smooth_monotonic_ramp():
    shape = (48, 160)
    foreground, background = np.full((*shape, 3), 200, np.uint8), np.full((*shape, 3), 40, np.uint8)
    mask = np.zeros(shape, np.float32)
    mask[:, :80] = 1.0
    row = laplacian_blend(foreground, background, mask, levels=4)[24, :, 0].astype(int)
    steps = np.diff(row)
    assert (steps <= 0).all()  # monotonic: no ringing, no overshoot
    assert row.max() == 200 and row.min() == 40
    assert -steps.min() <= 30  # spread over many pixels, not a hard step of 160
    assert ((row > 45) & (row < 195)).sum() >= 8
    assert (row[:20] == 200).all() and (row[-20:] == 40).all()  # the colours far from the seam are exact


def test_far_from_the_mask_the_background_is_bit_exact():
    """The pyramid spreads a mask over about 2 * 2 * (1 + 2 + 4 + 8) = 60 px at 4 levels; beyond, nothing moves."""
    foreground, background = random_images((160, 160), seed=1)
    mask = np.zeros((160, 160), np.float32)
    mask[20:36, 20:36] = 1.0
    out = laplacian_blend(foreground, background, mask)
    np.testing.assert_array_equal(out[100:, :], background[100:, :])
    np.testing.assert_array_equal(out[:, 100:], background[:, 100:])
    assert (out[20:36, 20:36] != background[20:36, 20:36]).mean() > 0.9


def test_odd_sizes_blend_the_two_halves():
    """61 x 47 is padded to 64 x 48 and cropped back: the seam is a monotonic ramp, the same on every row."""
    foreground, background = np.full((61, 47, 3), 180, np.uint8), np.full((61, 47, 3), 20, np.uint8)
    mask = np.zeros((61, 47), np.float32)
    mask[:, :23] = 1.0
    out = laplacian_blend(foreground, background, mask)
    assert out.shape == (61, 47, 3) and out.dtype == np.uint8
    assert (out == out[:1]).all()  # no row differs: the padding did not leak in
    row = out[0, :, 0].astype(int)
    assert (np.diff(row) <= 0).all() and row[0] > 150 and row[-1] < 50 and 80 < row[23] < 120


def test_blend_region_touches_only_the_box_and_not_the_input():
    frame, patch_source = random_images((90, 120), seed=2)
    original = frame.copy()
    box = (30, 20, 91, 67)  # 61 x 47
    patch = patch_source[20:67, 30:91]
    out = blend_region(frame, patch, np.ones((47, 61), np.float32), box)
    np.testing.assert_array_equal(frame, original)
    outside = np.ones((90, 120), bool)
    outside[20:67, 30:91] = False
    np.testing.assert_array_equal(out[outside], frame[outside])
    assert np.abs(out[20:67, 30:91].astype(int) - patch).max() <= 1


def test_blend_region_clips_a_box_reaching_past_the_frame():
    frame, patch_source = random_images((40, 50), seed=3)
    patch = patch_source[:30, :30]
    out = blend_region(frame, patch, np.ones((30, 30), np.float32), (35, -10, 65, 20))
    assert np.abs(out[:20, 35:].astype(int) - patch[10:, :15]).max() <= 1
    np.testing.assert_array_equal(out[20:], frame[20:])
    np.testing.assert_array_equal(out[:, :35], frame[:, :35])


def test_hull_mask_is_soft_across_the_hull_edge_only():
    points = np.array([[20.0, 20.0], [100.0, 25.0], [95.0, 90.0], [25.0, 85.0], [60.0, 50.0]])
    hard = hull_mask(points, (110, 120), 0.0)
    soft = hull_mask(points, (110, 120), 4.0)  # r = 8
    assert soft.dtype == np.float32 and soft.min() >= 0.0 and soft.max() <= 1.0
    assert set(np.unique(hard)) == {0.0, 1.0} and hard[50, 60] == 1.0 and hard[5, 5] == 0.0
    square = np.ones((17, 17), np.uint8)
    far_outside = cv2.dilate(hard.astype(np.uint8), square) == 0
    far_inside = cv2.erode(hard.astype(np.uint8), square) == 1
    assert (soft[far_outside] == 0).all() and np.allclose(soft[far_inside], 1.0, atol=1e-6)
    row = soft[55, 10:40]  # across the left edge (the hull starts at x = 23 on this row)
    assert (np.diff(row) >= 0).all() and ((row > 0.05) & (row < 0.95)).sum() >= 6
    assert 0.3 < soft[55, 24] < 0.7
