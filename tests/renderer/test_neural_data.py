"""The neural renderer's data: crop geometry, runs of face frames, the sequences with their two frames of history."""

import numpy as np
import pytest

from ned_outlier.errors import UserError
from ned_outlier.face.crop import apply_affine
from ned_outlier.renderer.neural.data import (ActorFrames, SequenceDataset, crop_vertices, rescale_crop,
                                              sequence_starts, split_frames)


def test_rescaled_crop_maps_the_same_region_edge_to_edge():
    # frame -> 256 crop: x' = 2x - 100, y' = 2y - 50 (a 128-px frame square from (50, 25) fills the crop)
    matrix = np.array([[2.0, 0.0, -100.0], [0.0, 2.0, -50.0]])
    small = rescale_crop(matrix, 256, 64)
    # the grid edges -0.5 and 255.5 of the big crop are the edges -0.5 and 63.5 of the small one
    corners = np.array([[49.75, 24.75], [177.75, 152.75]])  # frame points that land on -0.5 and 255.5
    np.testing.assert_allclose(apply_affine(matrix, corners), [[-0.5, -0.5], [255.5, 255.5]])
    np.testing.assert_allclose(apply_affine(small, corners), [[-0.5, -0.5], [63.5, 63.5]])


def test_crop_vertices_scale_depth_with_the_crop():
    matrix = np.array([[0.0, -2.0, 10.0], [2.0, 0.0, 0.0]])  # rotate 90 degrees and scale 2
    points = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -1.0]])
    np.testing.assert_allclose(crop_vertices(points, matrix), [[6.0, 2.0, 6.0], [10.0, 0.0, -2.0]])


def test_sequence_starts_stay_inside_runs_and_span():
    found = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1, 1], bool)
    np.testing.assert_array_equal(sequence_starts(found, range(0, 10), 3), [0, 1, 5, 6, 7])
    np.testing.assert_array_equal(sequence_starts(found, range(0, 8), 3), [0, 1, 5])  # 8, 9 held out
    assert len(sequence_starts(found, range(0, 10), 6)) == 0


def test_split_keeps_the_end_out():
    assert split_frames(472, 0.8) == (range(0, 378), range(378, 472))
    assert split_frames(10, 1.0) == (range(0, 10), range(10, 10))


def _frames(found) -> ActorFrames:
    count = len(found)
    crops = np.arange(count, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    vertices = np.arange(count, dtype=np.float32)[:, None, None] * np.ones((1, 5, 3), np.float32)
    return ActorFrames(crops, vertices, np.zeros((count, 2, 3)), np.asarray(found, bool))


def test_sequence_items_carry_two_frames_of_history():
    dataset = SequenceDataset(_frames([1, 1, 1, 1, 0, 1, 1, 1]), length=2, span=range(0, 8))
    assert list(dataset.starts) == [0, 1, 2, 5, 6]
    images, vertices = dataset[2]  # frames 2, 3 with history 0, 1
    assert images.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(images[:, 0, 0, 0].numpy(), np.array([2, 3]) / 127.5 - 1)
    np.testing.assert_array_equal(vertices[:, 0, 0].numpy(), [0, 1, 2, 3])
    _, vertices = dataset[1]  # frame 1: only frame 0 before it, which stands in for t - 2 as well
    np.testing.assert_array_equal(vertices[:, 0, 0].numpy(), [0, 0, 1, 2])
    _, vertices = dataset[3]  # frame 5 starts a run: no face at 4, so the run's first frame is its own history
    np.testing.assert_array_equal(vertices[:, 0, 0].numpy(), [5, 5, 5, 6])


def test_no_run_long_enough_is_a_clear_error():
    with pytest.raises(UserError, match="no run of 5 consecutive frames"):
        SequenceDataset(_frames([1, 1, 0, 1]), length=5, span=range(0, 4))
