"""DECA's 68 FLAME landmarks: the embedding file read (torch tensors inside, nothing run), barycentric points at
hand-computed places, the jaw contour's yaw bin by DECA's rule (bins written out by hand), contour-first order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.flame import (
    LANDMARK_EMBEDDING_ENV,
    FlameLandmarks,
    FlameLayer,
    barycentric_landmarks,
    contour_bins,
    head_yaw_degrees,
    load_flame_model,
    load_landmark_embedding,
)
from tests.reconstruction.flame_fixture import (
    NUM_FACES,
    flame_arrays,
    landmark_embedding,
    one_line_error,
    write_flame_model,
    write_landmark_embedding,
)

URL = "https://deca.is.tue.mpg.de"


@pytest.fixture(scope="module")
def embedding_file(tmp_path_factory):
    return write_landmark_embedding(tmp_path_factory.mktemp("lmk") / "landmark_embedding.npy", landmark_embedding())


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(LANDMARK_EMBEDDING_ENV, raising=False)


def error_of(path) -> str:
    return one_line_error(load_landmark_embedding, path)


def about_y(degrees: float) -> list[float]:
    return [0.0, math.radians(degrees), 0.0]


def test_the_embedding_loads_with_its_torch_tensors(embedding_file, monkeypatch):
    source = landmark_embedding()
    monkeypatch.setenv(LANDMARK_EMBEDDING_ENV, str(embedding_file))
    embedding = load_landmark_embedding()
    assert embedding.path == embedding_file
    np.testing.assert_array_equal(embedding.dynamic_faces, source["dynamic_lmk_faces_idx"].numpy())
    np.testing.assert_array_equal(embedding.dynamic_bary, source["dynamic_lmk_bary_coords"].numpy())
    np.testing.assert_array_equal(embedding.static_faces, source["static_lmk_faces_idx"])
    np.testing.assert_array_equal(embedding.full_faces, source["full_lmk_faces_idx"][0])
    np.testing.assert_array_equal(embedding.full_bary, source["full_lmk_bary_coords"][0].astype(np.float32))
    assert embedding.static_faces.dtype == embedding.dynamic_faces.dtype == np.int64
    assert embedding.static_bary.dtype == embedding.full_bary.dtype == np.float32
    assert (embedding.dynamic_faces.shape, embedding.full_bary.shape) == ((79, 17), (68, 3))


def test_a_missing_embedding_says_where_to_get_it(tmp_path):
    missing = tmp_path / "landmark_embedding.npy"
    for message in (error_of(missing), error_of(None)):
        assert LANDMARK_EMBEDDING_ENV in message and "landmark_embedding" in message and URL in message
    assert str(missing) in error_of(missing)


@pytest.mark.parametrize("key, change, expected", [
    ("dynamic_lmk_faces_idx", None, "has no key 'dynamic_lmk_faces_idx'"),
    ("dynamic_lmk_bary_coords", lambda a: a[:78], "key 'dynamic_lmk_bary_coords' has shape (78, 17, 3), expected"),
    ("full_lmk_faces_idx", lambda a: a[0], "key 'full_lmk_faces_idx' has shape (68,), expected a numeric array of "
                                           "shape (1, 68)"),
    ("static_lmk_faces_idx", lambda a: a.astype(np.float32), "'static_lmk_faces_idx' holds float32 values"),
])
def test_an_embedding_off_the_layout_is_refused_naming_the_key(tmp_path, key, change, expected):
    broken = landmark_embedding()
    if change is None:
        del broken[key]
    else:
        broken[key] = change(broken[key])
    path = write_landmark_embedding(tmp_path / "landmark_embedding.npy", broken)
    message = error_of(path)
    assert expected in message and str(path) in message and LANDMARK_EMBEDDING_ENV in message


def test_an_embedding_for_a_larger_mesh_is_refused(embedding_file):
    with pytest.raises(UserError, match=f"names face .* but the FLAME model has {NUM_FACES - 100} faces"):
        FlameLandmarks(load_landmark_embedding(embedding_file), np.zeros((NUM_FACES - 100, 3), np.int64))


def test_a_barycentric_landmark_is_the_weighted_corners():
    vertices = torch.tensor([[[9.0, 9.0, 9.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 4.0]]])
    vertices = torch.cat([vertices, 2 * vertices])  # (2, 4, 3)
    faces = torch.tensor([[0, 1, 2], [1, 2, 3]])
    # face 1 = vertices 1, 2, 3 at (0.2, 0.3, 0.5): (0.2, 0.6, 2.0); twice that in the second mesh
    points = barycentric_landmarks(vertices, faces, torch.tensor([1]), torch.tensor([[0.2, 0.3, 0.5]]))
    torch.testing.assert_close(points, torch.tensor([[[0.2, 0.6, 2.0]], [[0.4, 1.2, 4.0]]]))
    # per-mesh faces and weights: mesh 0 face 0 at its first corner (9, 9, 9), mesh 1 face 1 at its last (0, 0, 8)
    points = barycentric_landmarks(vertices, faces, torch.tensor([[0], [1]]),
                                   torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]]]))
    torch.testing.assert_close(points, torch.tensor([[[9.0, 9.0, 9.0]], [[0.0, 0.0, 8.0]]]))


def test_the_yaw_is_the_turn_about_y_of_global_then_neck():
    global_pose = torch.tensor([about_y(0), about_y(20), about_y(-25), about_y(10), [0.4, 0.0, 0.0]])
    neck_pose = torch.tensor([about_y(0), about_y(0), about_y(0), about_y(15), [0.0, 0.0, 0.0]])
    torch.testing.assert_close(head_yaw_degrees(global_pose, neck_pose),
                               torch.tensor([0.0, 20.0, -25.0, 25.0, 0.0]), rtol=0, atol=1e-4)
    torch.testing.assert_close(head_yaw_degrees(global_pose[:3]), torch.tensor([0.0, 20.0, -25.0]), rtol=0, atol=1e-4)


def test_the_contour_bin_follows_decas_rule():
    # yaw y >= 0: bin round(min(y, 39)); y < 0: 39 - round(max(y, -39)), so -1 -> 40 and -39 or less -> 78
    yaw = torch.tensor([0.0, 20.0, 39.0, 45.0, -1.0, -20.0, -39.0, -60.0, 20.4, 20.6, 2.5, -0.4])
    assert contour_bins(yaw).tolist() == [0, 20, 39, 39, 40, 59, 78, 78, 20, 21, 2, 0]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    model = load_flame_model(write_flame_model(tmp_path_factory.mktemp("flame") / "generic_model.pkl",
                                               flame_arrays()))
    vertices, _ = FlameLayer(model)(torch.zeros(3, 100), torch.zeros(3, 50), torch.zeros(3, 6))
    return model, vertices


@pytest.mark.parametrize("yaw, expected_bin", [(0.0, 0), (20.0, 20), (-20.0, 59), (50.0, 39), (-50.0, 78)])
def test_68_points_contour_first_from_the_yaw_bin(tmp_path, mesh, yaw, expected_bin):
    model, vertices = mesh
    source = landmark_embedding()
    # every landmark on the first corner of its face, so each is a mesh vertex that can be looked up by hand
    for key in ("static_lmk_bary_coords", "dynamic_lmk_bary_coords", "full_lmk_bary_coords"):
        source[key] = source[key] * 0
        source[key][..., 0] = 1
    landmarks = FlameLandmarks(load_landmark_embedding(
        write_landmark_embedding(tmp_path / "landmark_embedding.npy", source)), model.f)
    points = landmarks(vertices, torch.tensor([about_y(yaw)] * 3))
    assert points.shape == (3, 68, 3)

    def first_corner(faces) -> torch.Tensor:
        return vertices[0, model.f[np.asarray(faces), 0]]

    torch.testing.assert_close(points[0, :17], first_corner(source["dynamic_lmk_faces_idx"][expected_bin]))
    torch.testing.assert_close(points[0, 17:], first_corner(source["static_lmk_faces_idx"].astype(np.int64)))
    torch.testing.assert_close(landmarks.landmarks_3d(vertices)[1],
                               first_corner(source["full_lmk_faces_idx"][0].astype(np.int64)))
