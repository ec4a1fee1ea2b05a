"""FlameLayer on a synthetic FLAME file laid out for hand computation (flame_fixture: joint j at template vertex j,
skinning weights summing to exactly 1, JAW_VERTEX weighted fully to the jaw): expectations are written out from
the FLAME / linear-blend-skinning definitions, not from the layer's code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ned_outlier.reconstruction.flame import FlameLayer, axis_angle_to_matrix, load_flame_model
from tests.reconstruction.flame_fixture import JAW, JAW_VERTEX, flame_arrays, write_flame_model

JAW_JOINT = (0.0, -0.01, 0.02)
JAW_POINT = (0.01, -0.03, 0.05)
# FLAME's pose feature: (R_j - I) of joints 1-4, 9 row-major entries each; the jaw's entry (r, c) is 9 * (2 - 1) +
# 3 r + c. JAW_VERTEX's only correctives: 0.02 x per unit of the jaw's (R - I)[1, 1], 0.01 y per unit of [2, 1].
JAW_11, JAW_21 = 9 + 3 * 1 + 1, 9 + 3 * 2 + 1


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    arrays = flame_arrays()
    arrays["v_template"][JAW] = JAW_JOINT
    arrays["v_template"][JAW_VERTEX] = JAW_POINT
    arrays["posedirs"][JAW_VERTEX] = 0.0
    arrays["posedirs"][JAW_VERTEX, 0, JAW_11] = 0.02
    arrays["posedirs"][JAW_VERTEX, 1, JAW_21] = 0.01
    return load_flame_model(write_flame_model(tmp_path_factory.mktemp("flame") / "generic_model.pkl", arrays))


@pytest.fixture(scope="module")
def flame(model):
    return FlameLayer(model)


def codes(batch: int = 1, seed: int | None = None, scale: float = 1.0):
    """(shape (B, 100), expression (B, 50), pose (B, 6)): zeros, or random with `seed`."""
    if seed is None:
        return torch.zeros(batch, 100), torch.zeros(batch, 50), torch.zeros(batch, 6)
    generator = torch.Generator().manual_seed(seed)
    return tuple(scale * torch.randn(batch, n, generator=generator) for n in (100, 50, 6))


def test_axis_angle_to_matrix_on_hand_computed_rotations():
    quarter = math.pi / 2
    cases = {
        (0.0, 0.0, 0.0): [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        (quarter, 0.0, 0.0): [[1, 0, 0], [0, 0, -1], [0, 1, 0]],
        (0.0, quarter, 0.0): [[0, 0, 1], [0, 1, 0], [-1, 0, 0]],
        (0.0, 0.0, quarter): [[0, -1, 0], [1, 0, 0], [0, 0, 1]],
        # a third of a turn about (1, 1, 1): x -> y -> z -> x
        tuple([2 * math.pi / 3 / math.sqrt(3)] * 3): [[0, 0, 1], [1, 0, 0], [0, 1, 0]],
        (1e-5, 0.0, 0.0): [[1, 0, 0], [0, 1 - 5e-11, -1e-5], [0, 1e-5, 1 - 5e-11]],  # cos t = 1 - t^2 / 2
    }
    vectors = torch.tensor(list(cases), dtype=torch.float64)
    expected = torch.tensor(list(cases.values()), dtype=torch.float64)
    torch.testing.assert_close(axis_angle_to_matrix(vectors), expected, rtol=0, atol=1e-12)
    assert torch.equal(axis_angle_to_matrix(torch.zeros(2, 4, 3)), torch.eye(3).expand(2, 4, 3, 3))


def test_zero_codes_give_the_template_exactly(flame, model):
    vertices, joints = flame(*codes(batch=2))
    assert vertices.shape == (2, model.num_vertices, 3) and joints.shape == (2, 5, 3)
    assert torch.equal(vertices, torch.from_numpy(model.v_template).expand(2, -1, -1))
    assert torch.equal(joints[0], torch.from_numpy(model.v_template[:5]))  # joint j at template vertex j


@pytest.mark.parametrize("which, index, column", [("expression", 0, 300), ("expression", 49, 349),
                                                  ("shape", 0, 0), ("shape", 99, 99)])
def test_a_unit_coefficient_moves_the_vertices_by_its_basis_column(flame, model, which, index, column):
    shape, expression, pose = codes()
    (expression if which == "expression" else shape)[0, index] = 1.0
    vertices, _ = flame(shape, expression, pose)
    expected = torch.from_numpy(model.v_template) + torch.from_numpy(model.shapedirs[:, :, column])
    assert torch.equal(vertices[0], expected)


def test_more_expression_columns_may_be_used(model):
    flame = FlameLayer(model, n_shape=10, n_expression=100)
    expression = torch.zeros(1, 100)
    expression[0, 99] = 1.0
    vertices, _ = flame(torch.zeros(1, 10), expression, torch.zeros(1, 6))
    assert torch.equal(vertices[0], torch.from_numpy(model.v_template + model.shapedirs[:, :, 399]))
    with pytest.raises(ValueError, match="n_expression"):
        FlameLayer(model, n_expression=101)


def test_a_quarter_turn_of_the_jaw_about_x(flame, model):
    shape, expression, pose = codes()
    pose[0, 3] = math.pi / 2
    vertices, joints = flame(shape, expression, pose)
    # R - I = [[0, 0, 0], [0, -1, -1], [0, 1, -1]]: corrective 0.02 * -1 in x, 0.01 * 1 in y -> (-0.02, 0.01, 0).
    # posed before skinning: (0.01, -0.03, 0.05) + corrective = (-0.01, -0.02, 0.05); about the jaw joint
    # (0, -0.01, 0.02): (-0.01, -0.01, 0.03); R_x(90) (x, y, z) = (x, -z, y): (-0.01, -0.03, -0.01); + joint:
    torch.testing.assert_close(vertices[0, JAW_VERTEX], torch.tensor([-0.01, -0.04, 0.01]), rtol=0, atol=1e-7)
    # the joints do not move: the jaw rotates about itself, the eyes hang from the neck
    torch.testing.assert_close(joints[0], torch.from_numpy(model.v_template[:5]), rtol=0, atol=1e-8)


def test_a_global_rotation_turns_the_whole_mesh_rigidly_about_the_root(flame, model):
    shape, expression, _ = codes(seed=3)
    rest, rest_joints = flame(shape, expression, torch.zeros(1, 6))
    pose = torch.tensor([[0.0, 0.3, 0.0, 0, 0, 0]])
    vertices, joints = flame(shape, expression, pose)
    c, s = math.cos(0.3), math.sin(0.3)
    rotation = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    root = rest_joints[0, 0]
    torch.testing.assert_close(vertices[0], (rest[0] - root) @ rotation.T + root, rtol=0, atol=1e-7)
    torch.testing.assert_close(joints[0], (rest_joints[0] - root) @ rotation.T + root, rtol=0, atol=1e-7)
    # a quarter turn about z, component by component: (x, y, z) -> (-y, x, z) about the root
    pose = torch.tensor([[0.0, 0.0, math.pi / 2, 0, 0, 0]])
    vertices, _ = flame(*codes()[:2], pose)
    template, root = model.v_template, model.v_template[0]
    expected = np.stack([root[0] - (template[:, 1] - root[1]), root[1] + (template[:, 0] - root[0]),
                         template[:, 2]], axis=1)
    np.testing.assert_allclose(vertices[0].numpy(), expected, rtol=0, atol=1e-7)


def test_a_batch_of_two_equals_two_singles(flame):
    shape, expression, pose = codes(batch=2, seed=5, scale=0.5)
    neck, eyes = 0.2 * torch.randn(2, 3), 0.2 * torch.randn(2, 6)
    vertices, joints = flame(shape, expression, pose, neck, eyes)
    for i in range(2):
        single = flame(shape[i:i + 1], expression[i:i + 1], pose[i:i + 1], neck[i:i + 1], eyes[i:i + 1])
        torch.testing.assert_close(vertices[i:i + 1], single.vertices, rtol=0, atol=1e-7)
        torch.testing.assert_close(joints[i:i + 1], single.joints, rtol=0, atol=1e-7)


@pytest.mark.parametrize("seed", [None, 7])  # at rest (every angle zero) and posed
def test_gradients_reach_every_code(flame, seed):
    inputs = [tensor.clone().requires_grad_() for tensor in codes(seed=seed, scale=0.3)]
    neck = torch.zeros(1, 3, requires_grad=True)
    vertices, joints = flame(*inputs, neck_pose=neck)
    weights = torch.randn(vertices.shape, generator=torch.Generator().manual_seed(1))
    ((vertices * weights).sum() + joints.sum()).backward()
    for tensor in (*inputs, neck):
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


def test_codes_of_the_wrong_width_are_refused(flame):
    shape, expression, pose = codes()
    with pytest.raises(ValueError, match=r"expression must be \(B, 50\) with B = 1, got shape \(1, 49\)"):
        flame(shape, expression[:, :49], pose)
    with pytest.raises(ValueError, match="eye_pose"):
        flame(shape, expression, pose, eye_pose=torch.zeros(2, 6))
