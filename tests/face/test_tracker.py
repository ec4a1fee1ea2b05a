"""The tracker on scripted detections: ids, gaps, exact starts and ends, smoothing, and how often it detects."""

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from ned_outlier.errors import UserError
from ned_outlier.face.crop import apply_affine, crop_matrices
from ned_outlier.face.detector import Detections
from ned_outlier.face.tracker import TrackerConfig, box_iou, select_track, track_faces

Script = Callable[[int], list[list[float]]]


def square(x0: float, y0: float, side: float = 80.0) -> list[float]:
    return [x0, y0, x0 + side, y0 + side]


def frames(count: int) -> Iterator[np.ndarray]:
    """Tiny frames that carry their own index in the first pixel, so a fake detector knows which one it sees."""
    for index in range(count):
        frame = np.zeros((4, 6, 3), np.uint8)
        frame[0, 0, :2] = divmod(index, 256)
        yield frame


class ScriptedDetector:
    """A detector whose frame i holds the boxes script(i); it records every frame index it was shown."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.seen: list[int] = []

    def detect(self, batch: list[np.ndarray]) -> list[Detections]:
        indices = [int(frame[0, 0, 0]) * 256 + int(frame[0, 0, 1]) for frame in batch]
        self.seen.extend(indices)
        return [Detections.from_boxes(np.array(self.script(i), np.float32)) for i in indices]


def run(script: Script, count: int, **config):
    detector = ScriptedDetector(script)
    return track_faces(frames(count), detector, TrackerConfig(**config)), detector


def linear(i: int) -> list[float]:
    """A face drifting right by 2 px per frame."""
    return square(100 + 2 * i, 100)


def test_two_faces_crossing_paths_keep_their_ids():
    def crossing(i):
        a, b = square(20 + 8 * i, 100), square(500 - 8 * i, 100)
        occluded = box_iou(np.array([a]), np.array([b]))[0, 0] > 0.5
        return [a] if occluded else [a, b]  # the front face hides the other one while they overlap

    result, _ = run(crossing, 60)
    assert [track.track_id for track in result.tracks] == [0, 1]
    left_to_right, right_to_left = result.tracks
    np.testing.assert_allclose(left_to_right.raw_boxes[59], square(20 + 8 * 59, 100), atol=1e-3)
    np.testing.assert_allclose(right_to_left.raw_boxes[59], square(500 - 8 * 59, 100), atol=1e-3)
    assert right_to_left.present.all() and not right_to_left.detected[29:32].any()


def test_short_dropout_is_interpolated_and_flagged_undetected():
    result, _ = run(lambda i: [] if 30 <= i < 35 else [linear(i)], 100)
    (track,) = result.tracks
    assert track.present.all()
    assert not track.detected[30:35].any() and track.detected[[25, 29, 35, 40]].all()
    np.testing.assert_allclose(track.raw_boxes[30:35], [linear(i) for i in range(30, 35)], atol=1e-3)


def test_long_dropout_ends_the_track_and_leaves_frames_without_a_box():
    result, _ = run(lambda i: [] if 30 <= i < 70 else [linear(i)], 120)
    before, after = result.tracks
    assert (before.first_frame, before.last_frame, after.first_frame, after.last_frame) == (0, 29, 70, 119)
    assert not before.present[30:].any() and np.isnan(before.boxes[30:]).all()
    assert not after.present[:70].any() and np.isnan(after.boxes[:70]).all()


def test_face_back_where_it_left_after_a_long_gap_is_the_same_track_absent_in_between():
    """Face 0 leaves for frames 24-48 (25 frames, longer than max_gap) and comes back 10 px off; another face stays
    all along: face 0 keeps its id over both runs, with no box (and nothing interpolated) in the gap."""
    away = range(24, 49)
    result, _ = run(lambda i: ([] if i in away else [square(100 + (10 if i > 48 else 0), 100)]) + [square(400, 100)],
                    72)
    returning, staying = result.tracks
    assert (returning.track_id, staying.track_id) == (0, 1) and staying.present.all()
    assert np.flatnonzero(~returning.present).tolist() == list(away)
    assert returning.detected[[23, 49]].all() and not returning.detected[away].any()
    assert np.isnan(returning.boxes[away]).all() and np.isnan(returning.raw_boxes[away]).all()
    np.testing.assert_allclose(returning.boxes[:24], [square(100, 100)] * 24, atol=1e-3)  # smoothed per run
    np.testing.assert_allclose(returning.boxes[49:], [square(110, 100)] * 23, atol=1e-3)


@pytest.mark.parametrize("shift, size, config", [
    (80.0, 80.0, {}),                       # back a box side away: another face
    (0.0, 130.0, {}),                       # back in the same place at 1.6 times the size: another face
    (10.0, 80.0, {"rejoin_shift": 0.0}),    # rejoining switched off
], ids=["elsewhere", "other-size", "off"])
def test_face_back_elsewhere_or_at_another_size_or_with_rejoin_off_is_a_new_track(shift, size, config):
    result, _ = run(lambda i: [] if 24 <= i < 49 else [square(100 + (shift if i > 48 else 0), 100,
                                                              size if i > 48 else 80.0)], 72, **config)
    before, after = result.tracks
    assert (before.first_frame, before.last_frame, after.first_frame, after.last_frame) == (0, 23, 49, 71)
    assert before.present[:24].all() and not before.present[24:].any()


def test_face_appearing_and_leaving_between_keyframes_has_exact_first_and_last_frames():
    result, _ = run(lambda i: [square(50, 50)] + ([square(300, 50)] if 17 <= i <= 82 else []), 100, detect_every=5)
    still, visitor = result.tracks
    assert still.present.all()
    assert (visitor.track_id, visitor.first_frame, visitor.last_frame) == (1, 17, 82)


def test_detector_runs_on_keyframes_and_the_last_frame_only_while_nothing_changes():
    result, detector = run(lambda i: [linear(i)], 100, detect_every=5)
    assert detector.seen == [*range(0, 100, 5), 99]
    (track,) = result.tracks
    assert track.present.all() and track.detected.sum() == 21


def test_frames_are_streamed_with_at_most_detect_every_frames_buffered():
    produced = 0
    lag = []

    def counting_frames():
        nonlocal produced
        for frame in frames(100):
            produced += 1
            yield frame

    class LagRecorder(ScriptedDetector):
        def detect(self, batch):
            result = super().detect(batch)
            lag.append(produced - 1 - min(self.seen[-len(batch):]))
            return result

    detector = LagRecorder(lambda i: [linear(i)] if i % 13 else [])  # dropouts force refinements
    track_faces(counting_frames(), detector, TrackerConfig(detect_every=5))
    assert 0 < max(lag) < 5 and len(set(detector.seen)) > 21


def test_jittery_box_is_smoothed():
    noise = np.random.default_rng(0).normal(0.0, 2.0, (200, 4))
    result, _ = run(lambda i: [np.add(square(100, 100), noise[i]).tolist()], 200, detect_every=1)
    (track,) = result.tracks
    truth = np.array(square(100, 100))
    raw_error, smooth_error = track.raw_boxes - truth, track.boxes - truth
    assert smooth_error.std() < raw_error.std() / 3


def test_step_in_the_box_is_kept_sharp():
    result, _ = run(lambda i: [square(100 if i < 100 else 120, 100)], 200, detect_every=1)
    (track,) = result.tracks
    np.testing.assert_array_equal(track.boxes, track.raw_boxes)


def test_false_positives_on_one_keyframe_are_dropped_and_ids_stay_dense():
    def script(i):
        false_positive = [square(400, 10, 30)] if i in (10, 11) else []
        late = [square(300, 100)] if i >= 30 else []
        return [square(50, 50)] + false_positive + late

    result, _ = run(script, 100, detect_every=5)
    assert [(track.track_id, track.first_frame) for track in result.tracks] == [(0, 0), (1, 30)]


@pytest.mark.parametrize("frames, keyframes", [(1, [0]), (2, [0, 1]), (6, [0, 5]), (11, [0, 5, 10])])
def test_a_clip_with_fewer_keyframes_than_min_detections_keeps_a_face_seen_on_all_of_them(frames, keyframes):
    result, detector = run(lambda i: [linear(i)], frames)
    assert sorted(set(detector.seen)) == keyframes
    (track,) = result.tracks
    assert track.present.all()


def test_a_short_clip_still_drops_a_face_missed_on_one_of_its_keyframes():
    result, _ = run(lambda i: [linear(i)] if i else [], 2)
    assert result.tracks == []


def test_progress_reports_frames_done_up_to_the_last():
    done = []
    track_faces(frames(23), ScriptedDetector(lambda i: []), TrackerConfig(), progress=done.append)
    assert done == sorted(done) and done[-1] == 23


def test_empty_video_has_no_tracks_and_select_says_so():
    result, _ = run(lambda i: [], 0)
    assert (result.frame_count, result.tracks) == (0, [])
    with pytest.raises(UserError, match="no face found in 0 frames"):
        select_track(result)


def test_select_track_largest_by_area_times_presence_or_by_id():
    # a big face present for 20 frames and a smaller one present for all 100: the smaller one covers more
    result, _ = run(lambda i: [square(10, 10, 60)] + ([square(300, 10, 100)] if i < 20 else []), 100)
    small, big = result.tracks
    assert select_track(result).track_id == small.track_id
    assert select_track(result, 1) is big and select_track(result, "1") is big
    with pytest.raises(UserError, match=r"0 \(frames 0-99\), 1 \(frames 0-19\)"):
        select_track(result, 7)


def test_frame_size_change_is_a_user_error():
    sizes = [np.zeros((4, 6, 3), np.uint8), np.zeros((6, 4, 3), np.uint8)]
    with pytest.raises(UserError, match="frame 1 is 4x6 but the video started at 6x4"):
        track_faces(iter(sizes), ScriptedDetector(lambda i: []))


def test_config_rejects_keyframes_further_apart_than_a_gap():
    with pytest.raises(ValueError, match="max_gap"):
        TrackerConfig(detect_every=20, max_gap=12)


@pytest.mark.parametrize("config", [{"rejoin_shift": -1.0}, {"rejoin_scale": 0.9}, {"rejoin_shift": float("nan")}])
def test_config_rejects_a_negative_rejoin_shift_and_a_rejoin_scale_below_one(config):
    with pytest.raises(ValueError, match="rejoin_shift must be >= 0 and rejoin_scale >= 1"):
        TrackerConfig(**config)


def jitter(boxes: np.ndarray) -> float:
    """Mean absolute second difference over frames of boxes (T, 4), in pixels."""
    return float(np.abs(np.diff(boxes, 2, axis=0)).mean())


@pytest.mark.slow
def test_real_clip_has_one_track_in_every_frame_smoother_than_its_detections(detector, video_frames):
    clip = video_frames("pexels_video", 120)
    result = track_faces(iter(clip), detector)
    assert (result.frame_count, result.frame_size) == (120, (640, 360))
    (track,) = result.tracks
    assert track.present.all()
    keyframes = track.detected
    assert jitter(track.boxes[keyframes]) < jitter(track.raw_boxes[keyframes]) / 2
    every_frame = np.stack([faces.boxes[0] for faces in detector.detect(clip)])
    assert jitter(track.boxes) < jitter(every_frame) / 2
    # The 49-frame median also flattens real head motion shorter than a second (frames 30-45 move 40 px and back),
    # so the smoothed box can lag the face, but the crop built on it still holds the face on every frame.
    assert np.diag(box_iou(track.boxes, every_frame)).min() > 0.5
    corners = np.stack([apply_affine(m, box.reshape(2, 2)) for m, box in zip(crop_matrices(track.boxes), every_frame)])
    assert corners.min() > -0.5 and corners.max() < 255.5


@pytest.mark.slow
def test_real_track_ends_on_the_last_frame_where_the_face_is_detected(detector, video_frames):
    clip = video_frames("face_noface_video")
    seen = [index for index, faces in enumerate(detector.detect(clip)) if len(faces)]
    (track,) = track_faces(iter(clip), detector).tracks
    assert (track.first_frame, track.last_frame) == (seen[0], seen[-1])
    assert seen[-1] % 5 and seen[-1] < len(clip) - 13  # between keyframes, and longer than a gap before the end
