"""The displacement basis an edit uses: rigid skull motion removed, lip gap held, smoothing keeps broad motion."""

import numpy as np

from ned_outlier.reconstruction.edit_basis import EditGeometry, remove_skull_motion, similarity_tangent, umbrella_smooth
from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.mediapipe_au import MOUTH_AUS, mediapipe_au_model
from ned_outlier.reconstruction.topology import lip_gap_weights, mesh_edges


def test_a_small_rigid_motion_is_removed_entirely():
    model, _ = mediapipe_au_model()
    coefficients = np.array([1.0, -2.0, 0.5, 0.01, -0.02, 0.015, 0.03])  # translation, rotation, scale
    rigid = (similarity_tangent(model.mean) @ coefficients).reshape(-1, 3)
    np.testing.assert_allclose(remove_skull_motion(rigid, model.mean), 0.0, atol=1e-9)


def test_umbrella_smoothing_keeps_a_constant_field():
    field = np.tile([1.0, 2.0, 3.0], (478, 1))
    np.testing.assert_allclose(umbrella_smooth(field, mesh_edges(), 5, 0.5), field)


def test_expression_aus_keep_the_lip_gap_and_the_jaw_still_opens():
    model, schema = mediapipe_au_model()
    geometry = EditGeometry(model, MOUTH_AUS)
    gap = lip_gap_weights()
    effects = np.tensordot(geometry.basis, gap, axes=([1, 2], [0, 1]))
    for name, effect in zip(model.au_names, effects):
        if name not in MOUTH_AUS:
            assert abs(effect) < 1e-9, name
    assert effects[model.au_names.index("AU26")] > 5


def test_displacement_is_in_frame_pixels_under_the_pose():
    model, _ = mediapipe_au_model()
    geometry = EditGeometry(model, MOUTH_AUS)
    delta = np.zeros(20)
    delta[model.au_names.index("AU12")] = 1.0
    frontal = geometry.displacement(delta, np.eye(3), scale=2.0)
    np.testing.assert_allclose(frontal, 2.0 * geometry.basis[model.au_names.index("AU12")] @ FLIP.T)
    corner = 61  # the mouth corner rises in the image for a smile: y goes down the image, so dy < 0
    assert frontal[corner, 1] < -1.0
