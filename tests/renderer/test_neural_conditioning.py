"""The neural renderer's conditioning images: NMFC colours, the pixel <-> NDC mapping of the tiled rasterisation,
depth order, and the rendered channels of the real mean template."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ned_outlier.reconstruction.au_model import load_au_model
from ned_outlier.renderer.neural.conditioning import (
    CONDITION_CHANNELS,
    N_FACE_VERTICES,
    ConditioningConfig,
    ConditionRenderer,
    nmfc_colours,
    pixel_to_ndc,
    rasterize_attributes,
)

SIZE = 64


def frontal_template(size: int) -> np.ndarray:
    """(478, 3) the mean template seen from the front in a crop of `size` pixels: its x, y box centred and filling
    90% of the crop, model y up -> crop y down, model z toward the camera -> crop z away (a half-turn about x)."""
    mean = load_au_model().mean
    low, high = mean.min(axis=0), mean.max(axis=0)
    centre, scale = (low + high) / 2, 0.9 * size / (high - low)[:2].max()
    crop = (mean - centre) * scale * np.array([1.0, -1.0, -1.0])
    return crop + np.array([(size - 1) / 2, (size - 1) / 2, 0.0])


@pytest.fixture(scope="module")
def frontal() -> tuple[np.ndarray, torch.Tensor]:
    """The frontal template in a SIZE crop and its (7, SIZE, SIZE) conditioning image."""
    vertices = frontal_template(SIZE)
    image = ConditionRenderer(ConditioningConfig(size=SIZE))(torch.tensor(vertices, dtype=torch.float32)[None])[0]
    return vertices, image


def colour_at(image: torch.Tensor, x: float, y: float) -> np.ndarray:
    """NMFC colour in [0, 1] of the pixel holding crop point x, y."""
    return ((image[:3, round(y), round(x)] + 1) / 2).numpy()


def test_nmfc_colours_normalise_each_axis_over_the_vertices():
    template = np.array([[0.0, 10.0, -1.0], [2.0, 20.0, 1.0], [1.0, 12.5, 0.5]])
    expected = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.25, 0.75]])
    np.testing.assert_allclose(nmfc_colours(template), expected, atol=1e-7)


def test_nmfc_colours_of_a_flat_axis_are_zero():
    colours = nmfc_colours(np.array([[0.0, 5.0, 1.0], [4.0, 5.0, 3.0]]))
    np.testing.assert_array_equal(colours[:, 1], [0.0, 0.0])


def test_pixel_to_ndc_maps_the_crop_edges_to_pytorch3d_plus_one_and_minus_one():
    # pytorch3d's NDC: +X left, +Y up, the square image spanning [-1, 1]; pixel centres at integers in the crop.
    ndc = pixel_to_ndc(torch.tensor([-0.5, 0.0, 7.5, 15.0, 15.5]), 16)
    torch.testing.assert_close(ndc, torch.tensor([1.0, 1 - 1 / 16, 0.0, -1 + 1 / 16, -1.0]))


def covered_pixels(corners: list[list[float]], size: int = SIZE) -> np.ndarray:
    """(size, size) bool coverage of one triangle given in crop pixels (z = 0)."""
    vertices = torch.tensor([[x, y, 0.0] for x, y in corners])[None]
    _, covered = rasterize_attributes(vertices, torch.tensor([[0, 1, 2]]), torch.ones(1, 3, 1), size)
    return covered[0].numpy()


def test_a_triangle_covers_the_pixel_centres_inside_it():
    # Right angle at the crop's top-left corner (-0.5, -0.5), legs 50.7 along x and 25.8 along y: pixel (row r,
    # column c) is inside iff (c + 0.5) / 50.7 + (r + 0.5) / 25.8 < 1. No pixel centre lies on the hypotenuse.
    covered = covered_pixels([[-0.5, -0.5], [50.2, -0.5], [-0.5, 25.3]])
    rows, columns = np.mgrid[:SIZE, :SIZE]
    expected = (columns + 0.5) / 50.7 + (rows + 0.5) / 25.8 < 1
    np.testing.assert_array_equal(covered, expected)
    # row 0: the hypotenuse crosses y = 0 at x = 49.22; row 10 at x = 29.57
    assert covered[0, 49] and not covered[0, 50]
    assert covered[10, 29] and not covered[10, 30]
    assert covered[:, 0].sum() == 26  # column 0: the hypotenuse crosses x = 0 at y = 25.05
    # y down: a triangle in the top half of the crop renders in rows above its middle only
    assert covered[: SIZE // 2].any() and not covered[SIZE // 2 :].any()


def test_a_triangle_covers_the_same_pixels_whichever_way_it_is_wound():
    corners = [[3.2, 40.1], [60.4, 52.7], [20.6, 62.9]]
    np.testing.assert_array_equal(covered_pixels(corners), covered_pixels(corners[::-1]))
    assert covered_pixels(corners).sum() > 100


def test_the_nearer_of_two_overlapping_triangles_wins():
    corners = [[4.0, 4.0], [40.0, 4.0], [4.0, 40.0]]  # the second triangle is this one moved by (6, 6)
    triangles = torch.tensor([[0, 1, 2], [3, 4, 5]])
    attributes = torch.tensor([[1.0]] * 3 + [[2.0]] * 3)[None]  # (1, 6, 1): first triangle 1, second 2
    for first_z, second_z, winner in [(5.0, 9.0, 1.0), (9.0, 5.0, 2.0)]:
        vertices = torch.tensor([[x, y, first_z] for x, y in corners] + [[x + 6, y + 6, second_z] for x, y in corners])
        values, covered = rasterize_attributes(vertices[None], triangles, attributes, SIZE)
        assert values[0, 0, 20, 20] == winner  # inside both
        assert values[0, 0, 6, 6] == 1.0 and values[0, 0, 40, 12] == 2.0  # inside only one
        assert not covered[0, 60, 60] and values[0, 0, 60, 60] == 0.0


def test_output_shape_dtype_and_range(frontal):
    _, image = frontal
    assert CONDITION_CHANNELS == 7
    assert not ConditionRenderer(ConditioningConfig(size=SIZE)).state_dict()  # nothing to save in a checkpoint
    assert image.shape == (7, SIZE, SIZE) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1


def test_background_corners_are_minus_one_in_every_channel(frontal):
    _, image = frontal
    for row, column in [(0, 0), (0, SIZE - 1), (SIZE - 1, 0), (SIZE - 1, SIZE - 1)]:
        assert (image[:, row, column] == -1).all()


def test_nmfc_at_the_crop_centre_is_the_nose_tip_colour(frontal):
    # The crop centre (between pixels 31 and 32) sees the middle of the template's x, y box: the nose tip (4).
    _, image = frontal
    nose = nmfc_colours(load_au_model().mean[:N_FACE_VERTICES])[4]
    centre = ((image[:3, 31:33, 31:33] + 1) / 2).mean(dim=(1, 2)).numpy()
    np.testing.assert_allclose(centre, nose, atol=0.03)
    assert centre[2] > 0.95  # the nearest point of the face has the largest model z


@pytest.mark.parametrize("vertex", [33, 263, 168, 13, 61])
def test_nmfc_at_a_vertex_is_that_vertex_colour(frontal, vertex):
    # eye corners, nose bridge, upper lip, mouth corner: a flip of x or y would swap these colours
    vertices, image = frontal
    expected = nmfc_colours(load_au_model().mean[:N_FACE_VERTICES])[vertex]
    np.testing.assert_allclose(colour_at(image, *vertices[vertex, :2]), expected, atol=0.06)


def test_normals_are_unit_and_face_the_camera(frontal):
    _, image = frontal
    covered = image[0] > -1
    normals = image[3:6][:, covered]
    torch.testing.assert_close(normals.norm(dim=0), torch.ones(normals.shape[1]))
    assert image[5, 31:33, 31:33].max() < -0.9  # the nose tip looks straight at the camera
    assert (normals[2] < 0).all()  # a frontal face shows no back-facing surface


def test_eyes_are_on_at_the_iris_centres_and_off_at_the_crop_centre(frontal):
    vertices, image = frontal
    for iris in (468, 473):
        x, y = vertices[iris, :2]
        assert image[6, round(y), round(x)] == 1
    assert image[6, SIZE // 2, SIZE // 2] == -1
    assert image[6].eq(1).sum() < 0.02 * SIZE * SIZE


def test_eye_contours_are_drawn_with_the_configured_width():
    size = 256
    vertices = torch.tensor(frontal_template(size), dtype=torch.float32)[None]
    thin = ConditionRenderer(ConditioningConfig(size=size, eye_thickness=1.0))(vertices)[0, 6].eq(1).sum()
    thick = ConditionRenderer(ConditioningConfig(size=size, eye_thickness=3.0))(vertices)[0, 6].eq(1).sum()
    assert 2 < thick / thin < 4


def test_a_batch_renders_like_its_frames_alone():
    first = frontal_template(SIZE)
    turn = np.deg2rad(25)
    rotation = np.array([[np.cos(turn), 0, np.sin(turn)], [0, 1, 0], [-np.sin(turn), 0, np.cos(turn)]])
    centre = first.mean(axis=0)
    second = (first - centre) @ rotation.T * 0.8 + centre + [3.0, -2.0, 0.0]
    batch = torch.tensor(np.stack([first, second]), dtype=torch.float32)
    renderer = ConditionRenderer(ConditioningConfig(size=SIZE))
    together = renderer(batch)
    torch.testing.assert_close(together[0], renderer(batch[:1])[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(together[1], renderer(batch[1:])[0], rtol=0, atol=1e-6)
    assert not torch.equal(together[0], together[1])


def test_frames_without_a_finite_mesh_or_off_the_crop_are_background():
    vertices = torch.tensor(np.stack([frontal_template(SIZE)] * 3), dtype=torch.float32)
    vertices[0, 17, 1] = float("nan")
    vertices[1] += 500.0
    images = ConditionRenderer(ConditioningConfig(size=SIZE))(vertices)
    assert (images[:2] == -1).all()
    assert (images[2, 0] > -1).any()
