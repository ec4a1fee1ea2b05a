"""DECA's crop, checked against numbers worked out by hand from DECA's TestData (decalib/datasets/datasets.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ned_outlier.reconstruction.deca.crop import deca_crop_square, deca_crop_transform, deca_input


def apply(m: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    return m[:, :2] @ np.asarray(point, dtype=np.float64) + m[:, 2]


def test_landmarks_crop_by_hand():
    # bounding box x 100..300, y 50..210: side (200 + 160) / 2 * 1.1 = 198, size int(198 * 1.25) = int(247.5) = 247
    landmarks = np.array([[100.0, 120.0], [300.0, 90.0], [180.0, 50.0], [220.0, 210.0], [200.0, 130.0]])
    centre, size = deca_crop_square(landmarks=landmarks)
    assert centre.tolist() == [200.0, 130.0] and size == 247
    m = deca_crop_transform(landmarks=landmarks)
    assert m[0, 0] == m[1, 1] == pytest.approx(223 / 247, abs=1e-15) and m[0, 1] == m[1, 0] == 0
    np.testing.assert_allclose(apply(m, (200.0, 130.0)), [111.5, 111.5], atol=1e-12)  # centre -> (224 - 1) / 2
    np.testing.assert_allclose(apply(m, (200 - 123.5, 130 - 123.5)), [0.0, 0.0], atol=1e-12)  # the square's corners
    np.testing.assert_allclose(apply(m, (200 + 123.5, 130 + 123.5)), [223.0, 223.0], atol=1e-12)
    np.testing.assert_allclose(deca_crop_transform(landmarks=np.c_[landmarks, np.ones(5)]), m)  # z ignored


def test_detector_box_crop_by_hand():
    # box 100..301 x 50..210: side (201 + 160) / 2 = 180.5, centre y 130 + 0.12 * 180.5 = 151.66,
    # size int(180.5 * 1.25) = int(225.625) = 225
    centre, size = deca_crop_square(box=(100.0, 50.0, 301.0, 210.0))
    np.testing.assert_allclose(centre, [200.5, 151.66], atol=1e-12)
    assert size == 225
    m = deca_crop_transform(box=(100.0, 50.0, 301.0, 210.0))
    assert m[0, 0] == pytest.approx(223 / 225, abs=1e-15)
    np.testing.assert_allclose(apply(m, (200.5, 151.66)), [111.5, 111.5], atol=1e-12)
    np.testing.assert_allclose(apply(m, (200.5 + 112.5, 151.66 + 112.5)), [223.0, 223.0], atol=1e-12)
    assert not np.allclose(m, deca_crop_transform(landmarks=[[100.0, 50.0], [301.0, 210.0]]))


def test_deca_input_puts_the_box_centre_at_the_crop_centre_and_black_outside_the_frame():
    height, width = 240, 320
    ys, xs = np.mgrid[:height, :width]
    dot = np.exp(-((xs - 170.0) ** 2 + (ys - 60.0) ** 2) / (2 * 6.0**2))
    frame = (np.repeat(dot[..., None], 3, axis=2) * 255).round().astype(np.uint8)
    m = deca_crop_transform(box=(90.0, -20.0 - 0.12 * 160, 250.0, 140.0 - 0.12 * 160))  # centre (170, 60)
    image = deca_input(frame, m)
    assert image.shape == (3, 224, 224) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.max() > 0.9
    weight = image[0].astype(np.float64)
    gy, gx = np.mgrid[:224, :224]
    np.testing.assert_allclose([(gx * weight).sum() / weight.sum(), (gy * weight).sum() / weight.sum()],
                               [111.5, 111.5], atol=0.05)
    lit = deca_input(np.full((height, width, 3), 255, np.uint8), m)  # the crop reaches beyond the frame's top
    top_edge = int(np.floor(apply(m, (0.0, -0.5))[1]))  # (-0.5 + 40) * 223 / 200 = 44.04
    assert top_edge == 44
    assert (lit[:, : top_edge - 1] == 0).all() and (lit[:, top_edge + 2:] == 1).all()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="exactly one"):
        deca_crop_transform(box=(0, 0, 1, 1), landmarks=[[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="4 numbers"):
        deca_crop_transform(box=(0, 0, 1))
    with pytest.raises(ValueError, match="finite"):
        deca_crop_transform(box=(0, 0, np.nan, 10))
