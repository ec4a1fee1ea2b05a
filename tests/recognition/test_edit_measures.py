"""The pixel measures of an edit (recognition/edit_measures.py) on synthetic frames with answers known by hand."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from ned_outlier.errors import UserError
from ned_outlier.io.video import VideoReader, VideoWriter
from recognition.edit_measures import (JudgePanel, compare_frames, face_region, grey, laplacian_energy,
                                       measure_videos, move_with_flow, summarise_frames, target_rate, top_class_frames)
from recognition.evaluate import Record

SIZE = 200
SQUARE = np.array([[50, 50], [149, 50], [149, 149], [50, 149]], np.float64)  # a "mesh": the hull is this square


def rgb(grey_image: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(grey_image, np.uint8)[..., None], 3, axis=2)


def checkerboard(low: int = 0, high: int = 90) -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE]
    return np.where((x + y) % 2 == 0, low, high).astype(np.uint8)


def textured_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rgb(rng.integers(30, 200, (SIZE, SIZE))) for _ in range(count)]


def test_face_region_is_the_hull_eroded_by_a_twentieth_of_the_face():
    region = face_region(SQUARE, (SIZE, SIZE, 3))
    expected = np.zeros((SIZE, SIZE), bool)
    expected[55:145, 55:145] = True  # filled 50..149; the side is 99 px, eroded by round(4.95) = 5 px
    assert np.array_equal(region, expected)
    assert face_region(SQUARE, (SIZE, SIZE), erode_fraction=0).sum() == 100 * 100


def test_grey_is_the_unrounded_luma():
    frame = np.zeros((1, 2, 3), np.uint8)
    frame[0, 0] = (255, 0, 0)
    frame[0, 1] = (10, 20, 30)
    assert grey(frame) == pytest.approx(np.array([[0.299 * 255, 0.299 * 10 + 0.587 * 20 + 0.114 * 30]]), abs=1e-4)


def test_a_box_blurred_checkerboard_has_a_ninth_of_the_sharpness():
    # A 3x3 box filter turns a 0/90 checkerboard into 40/50 (4 or 5 of the 9 pixels are 90): a ninth of the
    # contrast, and the Laplacian is linear, so a ninth of its magnitude everywhere.
    source = checkerboard()
    blurred = cv2.blur(source, (3, 3), borderType=cv2.BORDER_REFLECT_101)
    assert set(np.unique(blurred[1:-1, 1:-1])) == {40, 50}
    [measure] = compare_frames([rgb(source)], [rgb(blurred)], [SQUARE])
    assert measure.sharpness_ratio == pytest.approx(1 / 9, rel=1e-6)
    assert laplacian_energy(grey(rgb(source)), face_region(SQUARE, source.shape)) == pytest.approx(4 * 90)


def laplacian_by_slicing(image: np.ndarray) -> np.ndarray:
    padded = np.pad(image.astype(np.float64), 1, mode="reflect")
    return (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * padded[1:-1, 1:-1])


def test_a_gaussian_blur_lowers_the_ratio_as_an_independent_laplacian_says():
    rng = np.random.default_rng(1)
    source = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE)).astype(np.uint8), (0, 0), 1.0)
    blurred = cv2.GaussianBlur(source, (0, 0), 1.5)
    region = face_region(SQUARE, source.shape)
    expected = (np.abs(laplacian_by_slicing(blurred))[region].mean()
                / np.abs(laplacian_by_slicing(source))[region].mean())
    [measure] = compare_frames([rgb(source)], [rgb(blurred)], [SQUARE])
    assert measure.sharpness_ratio == pytest.approx(expected, rel=1e-5)
    assert 0.1 < measure.sharpness_ratio < 0.9
    [same] = compare_frames([rgb(source)], [rgb(source)], [SQUARE])
    assert same.sharpness_ratio == 1.0


def test_a_moved_face_outline_does_not_count_as_sharpness():
    # The edit grows the textured face by 2 px into a flat background (as a warp moves the outline); inside the
    # eroded hull the pixels are the source's, so the ratio is 1. Without erosion the outline's edge would count.
    texture = checkerboard(115, 125)  # faint skin texture; the outline against the black background is strong
    source, edit = np.zeros((SIZE, SIZE), np.uint8), np.zeros((SIZE, SIZE), np.uint8)
    source[50:150, 50:150] = texture[50:150, 50:150]
    edit[48:152, 48:152] = texture[48:152, 48:152]
    [measure] = compare_frames([rgb(source)], [rgb(edit)], [SQUARE])
    assert measure.sharpness_ratio == 1.0
    [unrolled] = compare_frames([rgb(source)], [rgb(edit)], [SQUARE], erode_fraction=0)
    assert unrolled.sharpness_ratio < 0.95


def test_one_frame_ten_levels_brighter_pops_itself_and_the_frame_after():
    sources = textured_frames(1) * 10  # a face standing still
    edits = [frame.copy() for frame in sources]
    edits[5] = edits[5] + np.uint8(10)  # 30..199 + 10: no wrap-around
    measures = list(compare_frames(sources, edits, [SQUARE] * 10))
    assert [m.frame for m in measures] == list(range(10))
    assert np.isnan(measures[0].jump)
    jumps = [m.jump for m in measures[1:]]
    assert jumps == pytest.approx([0, 0, 0, 0, 10, 10, 0, 0, 0], abs=1e-4)
    assert [m.sharpness_ratio for m in measures] == pytest.approx([1.0] * 10)  # a shift keeps the Laplacian
    assert [m.jump_compensated for m in measures[1:]] == pytest.approx(jumps, abs=1e-4)  # a still head: the same
    summary = summarise_frames(measures)
    assert (summary["pops"], summary["pop_frames"]) == (2, [5, 6])
    assert [frame for frame, _ in summary["worst_frames"][:2]] == [5, 6]
    assert summary["max_jump"] == pytest.approx(10, abs=1e-4)
    assert summary["jumps"] == 9 and summary["face_frames"] == 10
    assert (summary["pops_compensated"], summary["pop_frames_compensated"]) == (2, [5, 6])


def test_a_steady_edit_does_not_pop_and_a_frame_without_the_face_breaks_the_chain():
    sources = textured_frames(8, seed=2)
    edits = [np.clip(f.astype(int) + 25, 0, 255).astype(np.uint8) for f in sources]  # a constant change: no jump
    edits[4] = sources[4]  # the edit is missing on a frame without the face: not measured, and no jump across it
    regions = [SQUARE] * 8
    regions[4] = None
    measures = list(compare_frames(sources, edits, regions))
    assert [m.frame for m in measures] == [0, 1, 2, 3, 5, 6, 7]
    assert np.isnan(measures[4].jump)  # frame 5 follows a frame without the face
    assert summarise_frames(measures)["pops"] == 0


def test_the_jump_compares_only_pixels_in_both_frames_regions():
    sources = textured_frames(2, seed=3)
    edits = [sources[0].copy(), sources[1].copy()]
    edits[1][:, :100] = np.clip(edits[1][:, :100].astype(int) + 50, 0, 255).astype(np.uint8)  # left half only
    right = SQUARE + [60, 0]  # x 110..209 -> clipped to the frame; the square at t=1 is on the right
    measures = list(compare_frames(sources, edits, [SQUARE, right]))
    assert measures[1].jump == 0.0  # the changed left half is outside frame 1's region


def smooth_texture(rng: np.random.Generator, sigma: float, low: int = 60, high: int = 180) -> np.ndarray:
    """(SIZE, SIZE) float: uniform noise blurred by `sigma` px, the texture an optical flow can follow."""
    noise = rng.integers(low, high, (SIZE, SIZE)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), sigma)


def head_moving_clip(rng: np.random.Generator, pattern: np.ndarray, shifts):
    """Source and edit frames of a face (smooth texture) moving by `shifts` [(dx, dy)], the edit adding `pattern`
    (a list, one per frame, or one for all) on the face; and each frame's "mesh" (the square moved along)."""
    face = smooth_texture(rng, 1.5)
    patterns = pattern if isinstance(pattern, list) else [pattern] * len(shifts)
    sources = [rgb(np.clip(np.roll(face, (dy, dx), axis=(0, 1)), 0, 255)) for dx, dy in shifts]
    edits = [rgb(np.clip(np.roll(face + one, (dy, dx), axis=(0, 1)), 0, 255))
             for (dx, dy), one in zip(shifts, patterns)]
    return sources, edits, [SQUARE + shift for shift in shifts]


def test_an_edit_that_moves_with_the_head_jumps_only_before_compensation():
    # The edit adds a fixed pattern to the face, and the face moves by (3, 2) px a frame: in image space the
    # residual moves, along the source's motion it stands still.
    rng = np.random.default_rng(5)
    pattern = (smooth_texture(rng, 1.5, 0, 256) - 128) * 4  # about +-20 grey levels
    sources, edits, meshes = head_moving_clip(rng, pattern, [(0, 0), (3, 2), (6, 4)])
    measures = list(compare_frames(sources, edits, meshes))
    assert all(m.jump > 8 for m in measures[1:])
    assert all(m.jump_compensated < 1.0 for m in measures[1:])
    assert summarise_frames(measures)["pops_compensated"] == 0


def test_a_pop_on_a_moving_face_is_still_a_pop_after_compensation():
    # The same moving face, its edit switching on at frame 2 (a donor mouth pasted, a limit let go): a jump the
    # source's motion cannot explain.
    rng = np.random.default_rng(7)
    switch_on = (smooth_texture(rng, 1.5, 0, 256) - 128) * 4
    sources, edits, meshes = head_moving_clip(rng, [0 * switch_on, 0 * switch_on, switch_on], [(0, 0), (2, 1), (4, 2)])
    measures = list(compare_frames(sources, edits, meshes))
    assert measures[1].jump_compensated < 0.5 and measures[2].jump_compensated > 8
    assert summarise_frames(measures)["pop_frames_compensated"] == [2]


def test_an_edit_that_moves_with_an_opening_jaw_jumps_only_before_compensation():
    # The lower half of the face (and the edit's pattern on it) moves down 3 px a frame, the upper half stands
    # still: no affine map of the whole face explains that, the source's own flow does, except in the band the
    # jaw uncovers, which the flows' disagreement leaves out.
    rng = np.random.default_rng(6)
    face = smooth_texture(rng, 1.5)
    pattern = (smooth_texture(rng, 1.5, 0, 256) - 128) * 4

    def frame(image, drop):  # rows >= 100 show the image `drop` px lower
        moved = image.copy()
        moved[100 + drop:] = image[100:SIZE - drop]
        return rgb(np.clip(moved, 0, 255))

    drops = [0, 3, 6]
    measures = list(compare_frames([frame(face, d) for d in drops], [frame(face + pattern, d) for d in drops],
                                   [SQUARE] * 3))
    assert all(m.jump > 5 for m in measures[1:])  # the lower half's pattern moved against itself
    assert all(m.jump_compensated < 2.0 for m in measures[1:])  # the flow blurs the jaw line over a few px
    assert summarise_frames(measures)["pops_compensated"] == 0


def test_move_with_flow_follows_a_translation_and_leaves_out_what_was_outside_the_region():
    rng = np.random.default_rng(8)
    before = smooth_texture(rng, 1.5)
    now = np.roll(before, (3, 5), axis=(0, 1))
    image = smooth_texture(rng, 1.5, 0, 256)
    region = face_region(SQUARE, image.shape, erode_fraction=0)
    moved, moved_region = move_with_flow(image, region, before, now, np.roll(region, (3, 5), axis=(0, 1)))
    expected_region = np.roll(region, (3, 5), axis=(0, 1))
    assert moved_region.sum() >= 0.9 * expected_region.sum() and not (moved_region & ~expected_region).any()
    shifted = np.roll(image, (3, 5), axis=(0, 1))
    assert np.abs(moved - shifted)[moved_region].mean() < 0.5
    empty = np.zeros_like(region)
    assert not move_with_flow(image, empty, before, now, empty)[1].any()


def test_sequences_of_different_lengths_are_refused():
    frames = textured_frames(3)
    with pytest.raises(ValueError, match="edit ended at frame 2"):
        list(compare_frames(frames, frames[:2], [SQUARE] * 3))


def test_measure_videos_streams_two_files_and_a_re_encode_has_no_pops(tmp_path):
    rng = np.random.default_rng(4)
    base = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8), (0, 0), 2.0)
    frames = [np.roll(base, shift, axis=1) for shift in range(6)]  # a slowly panning texture
    source, copy, again = tmp_path / "source.mp4", tmp_path / "copy.mp4", tmp_path / "again.mp4"
    for path in (source, copy):
        with VideoWriter(path, Fraction(25), SIZE, SIZE) as writer:
            for frame in frames:
                writer.write(frame)
    regions = [SQUARE + [shift, 0] for shift in range(6)]
    same = measure_videos(source, copy, regions)  # the same frames encoded the same way: the same pixels
    assert same["sharpness_ratio"] == 1.0 and same["pops"] == 0 and same["max_jump"] == 0.0
    assert same["frames"]["frame"] == list(range(6))
    assert measure_videos(source, copy, regions[:4], frames=4)["face_frames"] == 4  # the first 4 frames only
    with VideoWriter(again, Fraction(25), SIZE, SIZE) as writer:  # the source decoded and encoded once more
        for frame in VideoReader(source):
            writer.write(frame)
    codec = measure_videos(source, again, regions)
    assert 0.5 < codec["sharpness_ratio"] < 1.0 and codec["pops"] == 0 and 0 < codec["max_jump"] < 4
    assert codec["pops_compensated"] == 0
    with pytest.raises(UserError, match="regions ended"):
        measure_videos(source, copy, regions[:5])


class FakeJudge:
    def __init__(self, labels, rows):
        self.labels, self.rows = tuple(labels), np.array(rows, np.float32)

    def predict_proba(self, images):
        return self.rows[: len(images)]


def test_a_panel_judges_once_and_splits_per_judge():
    a = FakeJudge(("happy", "neutral"), [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    b = FakeJudge(("sad", "happy", "neutral"), [[0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    panel = JudgePanel({"a": a, "b": b})
    assert panel.labels == ("a:happy", "a:neutral", "b:sad", "b:happy", "b:neutral")
    probabilities = panel.predict_proba([None] * 3)
    records = [Record("v", i, probabilities=row) for i, row in enumerate(probabilities)] + [Record("v", 3)]
    split = panel.split(records)
    assert split["b"][1].probabilities.tolist() == pytest.approx([0.7, 0.2, 0.1]) and not split["a"][3].has_face
    assert top_class_frames(split["a"], a.labels, "neutral") == {1}
    assert top_class_frames(split["b"], b.labels, "neutral") == {0}
    assert top_class_frames(split["a"], a.labels, "sad") == set()
    assert target_rate(split["a"], a.labels, "happy") == (pytest.approx(2 / 3), 3)
    assert target_rate(split["b"], b.labels, "happy", frames={0, 2, 3}) == (0.5, 2)
    assert target_rate(split["a"], a.labels, "sad") == (None, 3)
    assert target_rate(split["a"], a.labels, "happy", frames=set()) == (None, 0)
