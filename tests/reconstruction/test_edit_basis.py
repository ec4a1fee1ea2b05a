"""The displacement basis an edit uses: rigid skull motion removed, lip gap held, smoothing keeps broad motion."""

import numpy as np

import pytest

from ned_outlier.reconstruction.au_model import load_au_model
from ned_outlier.reconstruction.edit_basis import (
    EditBasisConfig, EditGeometry, border_weights, remove_skull_motion, similarity_tangent, umbrella_smooth,
)
from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.mediapipe_au import MOUTH_AUS, mediapipe_au_model
from ned_outlier.reconstruction.topology import face_oval, lip_gap_weights, mesh_edges


def test_a_small_rigid_motion_is_removed_entirely():
    model, _ = mediapipe_au_model()
    coefficients = np.array([1.0, -2.0, 0.5, 0.01, -0.02, 0.015, 0.03])  # translation, rotation, scale
    rigid = (similarity_tangent(model.mean) @ coefficients).reshape(-1, 3)
    np.testing.assert_allclose(remove_skull_motion(rigid, model.mean), 0.0, atol=1e-9)


def test_umbrella_smoothing_keeps_a_constant_field():
    field = np.tile([1.0, 2.0, 3.0], (478, 1))
    np.testing.assert_allclose(umbrella_smooth(field, mesh_edges(), 5, 0.5), field)


def gap_effects(geometry):
    return np.tensordot(geometry.basis, lip_gap_weights(), axes=([1, 2], [0, 1]))


def test_holding_the_lip_gap_cancels_each_expression_aus_gap_change_by_that_fraction():
    model = load_au_model()
    free = gap_effects(EditGeometry(model, MOUTH_AUS, EditBasisConfig(hold_lip_gap=0.0)))
    held = gap_effects(EditGeometry(model, MOUTH_AUS, EditBasisConfig(hold_lip_gap=1.0)))
    half = gap_effects(EditGeometry(model, MOUTH_AUS, EditBasisConfig(hold_lip_gap=0.5)))
    for name, f, h, m in zip(model.au_names, free, held, half):
        if name not in MOUTH_AUS:
            assert abs(h) < 1e-9, name
            assert m == pytest.approx(0.5 * f, abs=1e-9), name
    assert free[model.au_names.index("AU06")] > 1.0  # a cheek raise parts the lips; removing a grin closes them
    assert held[model.au_names.index("AU26")] > 5  # the jaw still opens the mouth


def test_expression_aus_leave_the_face_outline_and_chin_still():
    model = load_au_model()
    geometry = EditGeometry(model, MOUTH_AUS)
    jaw = model.au_names.index("AU26")
    outline = face_oval()
    for k, name in enumerate(model.au_names):
        if k != jaw:
            np.testing.assert_allclose(geometry.basis[k, outline], 0.0, atol=1e-12, err_msg=name)
    assert np.abs(geometry.basis[jaw, 152]).max() > 5  # the jaw drop moves the chin
    np.testing.assert_allclose(border_weights(model.mean, 0.0), 1.0)


def test_border_weights_rise_from_the_outline_to_one_a_band_inside():
    square = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0]], dtype=float)
    mean = np.zeros((468, 3))
    mean[face_oval()] = square[np.arange(len(face_oval())) % 4]  # an outline tracing the square's corners
    mean[0] = [5, 5, 0]  # 5 from every side
    mean[1] = [1, 5, 0]  # 1 from the left side
    weights = border_weights(mean, band=0.2)  # band 2 units: width 10
    x = 0.5
    assert weights[1] == pytest.approx(3 * x**2 - 2 * x**3)
    assert weights[0] == 1.0


def test_a_closing_change_closes_at_most_its_share_of_the_source_opening():
    model = load_au_model()
    geometry = EditGeometry(model, MOUTH_AUS)
    delta = np.zeros(20)
    delta[model.au_names.index("AU06")] = -2.0  # closes the lips by 2 * AU06's opening
    closing = -float(delta @ geometry.opens)
    assert closing > 2.0
    gap = lip_gap_weights()
    wide = 2 * closing / geometry.max_lip_closing  # room enough: the whole closing
    narrow = 0.5 * closing / geometry.max_lip_closing  # room for half of it
    for source_gap, expected in [(wide, -closing), (narrow, -0.5 * closing)]:
        move = geometry.displacement(delta, np.eye(3), 1.0, source_gap=source_gap) @ FLIP  # FLIP undoes FLIP
        assert np.sum(move * gap) == pytest.approx(expected)


def test_displacement_is_in_frame_pixels_under_the_pose():
    model, _ = mediapipe_au_model()
    geometry = EditGeometry(model, MOUTH_AUS)
    delta = np.zeros(20)
    delta[model.au_names.index("AU12")] = 1.0
    frontal = geometry.displacement(delta, np.eye(3), scale=2.0)
    np.testing.assert_allclose(frontal, 2.0 * geometry.basis[model.au_names.index("AU12")] @ FLIP.T)
    corner = 61  # the mouth corner rises in the image for a smile: y goes down the image, so dy < 0
    assert frontal[corner, 1] < -1.0


def test_expression_aus_part_the_lips_only_when_allowed_and_the_jaw_always_does():
    model = load_au_model()
    delta = np.zeros(20)
    delta[model.au_names.index("AU06")] = 1.0  # a cheek raise parts the lips in the raw model
    gap = lip_gap_weights()
    opening = lambda geometry, d: float(np.sum(geometry.model_displacement(d) * gap))  # noqa: E731
    closed = EditGeometry(model, MOUTH_AUS)
    free = EditGeometry(model, MOUTH_AUS, EditBasisConfig(open_lips=True))
    assert opening(closed, delta) == pytest.approx(0.0, abs=1e-9)
    assert opening(free, delta) == pytest.approx(float(delta @ free.opens)) and opening(free, delta) > 1.0
    assert opening(closed, -delta) == pytest.approx(-float(delta @ closed.opens))  # closing is kept
    jaw = np.zeros(20)
    jaw[model.au_names.index("AU26")] = 1.0
    assert opening(closed, jaw) > 5.0
