"""Face tracks over a streamed video: detect on keyframes, refine where the faces change, interpolate, smooth.

    result = track_faces(reader, FaceDetector(), TrackerConfig())
    track = select_track(result, "largest")       # or a track id
    track.boxes                                   # (T, 4) smoothed boxes, NaN where the face is absent

Keyframes are frames 0, k, 2k, ... (k = detect_every) and the last frame. Between two keyframes that agree (every
live track is detected on both, matched by IoU, and nothing new appears), the frames in between are not detected:
their boxes are interpolated. Otherwise every frame in between is detected and matched one by one, so a face's
first and last frame are exact. Only the frames since the last keyframe are buffered.

Matching compares each live track's box, extrapolated at constant velocity, with the frame's detections by IoU
(Hungarian assignment). A track survives up to max_gap frames without a detection (filled by linear interpolation);
after a longer gap it ends, and a face found later starts a new track. When the video is done, a track that starts
after an earlier one ended, where that one ended and at its size (rejoin_shift, rejoin_scale), is the same face
come back (it left the frame, or turned away): the two are one track, absent in the frames between them, never
interpolated across. NED then median-filters each box coordinate over 49 frames (its preprocessing/detect.py), per
run of frames, so smoothing never crosses a gap. Boxes are x0, y0, x1, y1 in frame pixels, pixel centres at integer
coordinates.

Re-entry is judged by position and size only: the tracker sees boxes, not faces (dlib's identity embedding is in
`recognition`, which ned_outlier does not import). So another person who steps in where the first one left is
taken for them; set rejoin_shift to 0 to keep every re-entry a track of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.ndimage import median_filter
from scipy.optimize import linear_sum_assignment

from ned_outlier.errors import UserError
from ned_outlier.face.detector import Detections

VELOCITY_BASELINE = 5  # frames between the two detections a track's velocity is measured on (averages out jitter)


class Detector(Protocol):
    """Anything with FaceDetector's detect: frames (RGB uint8 (H, W, 3)) -> one Detections per frame."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]: ...


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of the tracker.

    detect_every: the detector runs on every k-th frame (and on all frames between two keyframes that disagree).
    iou_threshold: smallest IoU between a track's predicted box and a detection for them to match.
    max_gap: frames without a detection that a track bridges by interpolation; a longer gap ends it. Must be at
        least detect_every - 1 (frames between agreeing keyframes are not a gap).
    smooth_window: frames of the median filter over each box coordinate (NED: 49); made odd, clipped to the track.
    min_detections: tracks detected on fewer keyframes are dropped as spurious. A clip with fewer keyframes than
        this (shorter than about min_detections * detect_every frames) asks a track for a detection on each of its
        keyframes instead: a 1-frame clip (a photo) for one, a 2-frame clip for two, a 6-frame clip for two (0, 5).
    rejoin_shift: a track that starts after an earlier one ended continues it (the same face, absent in between) when
        its first box's centre is within rejoin_shift box sides (the mean side of the two boxes) of the earlier
        one's last box's centre; the nearest such track wins. 0: never (every re-entry is a new track).
    rejoin_scale: ... and when the two boxes' sides differ by at most this factor (>= 1).
    """

    detect_every: int = 5
    iou_threshold: float = 0.3
    max_gap: int = 12
    smooth_window: int = 49
    min_detections: int = 3
    rejoin_shift: float = 0.5
    rejoin_scale: float = 1.5

    def __post_init__(self) -> None:
        if self.detect_every < 1 or self.smooth_window < 1 or self.min_detections < 1 or self.max_gap < 0:
            raise ValueError("detect_every, smooth_window and min_detections must be >= 1 and max_gap >= 0")
        if not (self.rejoin_shift >= 0 and self.rejoin_scale >= 1):  # NaN too
            raise ValueError(f"rejoin_shift must be >= 0 and rejoin_scale >= 1, got {self.rejoin_shift}, "
                             f"{self.rejoin_scale}")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")
        if self.max_gap < self.detect_every - 1:
            raise ValueError(f"max_gap ({self.max_gap}) must be at least detect_every - 1 ({self.detect_every - 1})")


@dataclass(frozen=True, eq=False)
class FaceTrack:
    """One face over a whole video of T frames.

    track_id: 0, 1, 2 ... in order of first appearance.
    boxes: (T, 4) float32 smoothed x0, y0, x1, y1; NaN where absent.
    raw_boxes: (T, 4) float32 the detections before smoothing, linearly interpolated between them; NaN where absent.
    present: (T,) bool, one run of frames, or several when the face left and came back (TrackerConfig.rejoin_shift).
    detected: (T,) bool, frames where the detector actually found this face.
    """

    track_id: int
    boxes: np.ndarray
    raw_boxes: np.ndarray
    present: np.ndarray
    detected: np.ndarray

    @property
    def first_frame(self) -> int:
        return int(np.argmax(self.present))

    @property
    def last_frame(self) -> int:
        return len(self.present) - 1 - int(np.argmax(self.present[::-1]))

    def mean_area(self) -> float:
        """Mean area of the smoothed box over the frames where the face is present, in square pixels."""
        boxes = self.boxes[self.present].astype(np.float64)
        return float(np.mean((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))


@dataclass(frozen=True)
class TrackingResult:
    """All face tracks of a video of frame_count frames of frame_size (W, H); tracks sorted by track_id."""

    frame_count: int
    frame_size: tuple[int, int]
    tracks: list[FaceTrack]


def track_faces(
    frames: Iterable[np.ndarray],
    detector: Detector,
    config: TrackerConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> TrackingResult:
    """Track faces over `frames` (RGB uint8 (H, W, 3), consumed once); progress(n) is told the frames done so far."""
    config = config or TrackerConfig()
    state = _TrackerState(config)
    between: list[np.ndarray] = []  # frames after the last keyframe
    frame_size = (0, 0)
    frame_count = 0
    for index, frame in enumerate(frames):
        frame_size = _frame_size(frame, frame_size if index else None, index)
        frame_count = index + 1
        if index % config.detect_every:
            between.append(frame)
            continue
        _step(state, detector, between, index, frame)
        between = []
        if progress:
            progress(frame_count)
    if between:  # the last frame is a keyframe too, so that track ends are exact
        _step(state, detector, between[:-1], frame_count - 1, between[-1])
        if progress:
            progress(frame_count)
    return TrackingResult(frame_count, frame_size, state.finish(frame_count))


def select_track(result: TrackingResult, face: str | int = "largest", no_face_hint: str = "") -> FaceTrack:
    """The track to edit: "largest" (largest box area summed over its frames) or a track id (int or digits);
    UserError when there is none, `no_face_hint` appended to its message (e.g. detector.small_face_hint)."""
    _require_tracks(result, no_face_hint)
    if face == "largest":
        return max(result.tracks, key=lambda track: track.mean_area() * np.count_nonzero(track.present))
    by_id = {track.track_id: track for track in result.tracks}
    key = int(face) if isinstance(face, str) and face.isdigit() else face
    if isinstance(key, bool) or key not in by_id:
        valid = ", ".join(f"{t.track_id} (frames {t.first_frame}-{t.last_frame})" for t in result.tracks)
        raise UserError(f"no face track {face!r}: use 'largest' or one of {valid}")
    return by_id[key]


def select_tracks(result: TrackingResult, face: str | int = "largest", no_face_hint: str = "") -> list[FaceTrack]:
    """The tracks to edit: every track, by id, for "all"; else [select_track(result, face, no_face_hint)]."""
    if face == "all":
        _require_tracks(result, no_face_hint)
        return sorted(result.tracks, key=lambda track: track.track_id)
    return [select_track(result, face, no_face_hint)]


def _require_tracks(result: TrackingResult, no_face_hint: str) -> None:
    """UserError when `result` has no track, `no_face_hint` appended to its message."""
    if not result.tracks:
        raise UserError(f"no face found in {result.frame_count} frames{no_face_hint}")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (N, M) of boxes a (N, 4) and b (M, 4), x0, y0, x1, y1."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return intersection / np.maximum(area_a[:, None] + area_b[None, :] - intersection, 1e-12)


def _step(state: _TrackerState, detector: Detector, between: list[np.ndarray], key: int, key_frame: np.ndarray) -> None:
    """Process frames key - len(between) ... key: detect on the keyframe, and on `between` if the faces changed."""
    key_detections = detector.detect([key_frame])[0]
    if not state.agrees(key - len(between) - 1, key, key_detections):
        first = key - len(between)
        for offset, detections in enumerate(detector.detect(between) if between else []):
            state.update(first + offset, detections, keyframe=False)
    state.update(key, key_detections, keyframe=True)


def _frame_size(frame: np.ndarray, expected: tuple[int, int] | None, index: int) -> tuple[int, int]:
    """(W, H) of frame; UserError when it differs from the size of the video's first frame."""
    size = (int(frame.shape[1]), int(frame.shape[0]))
    if expected is not None and size != expected:
        raise UserError(f"frame {index} is {size[0]}x{size[1]} but the video started at {expected[0]}x{expected[1]}")
    return size


@dataclass
class _Track:
    """A track while the video streams: the frames where it was detected and its boxes there."""

    frames: list[int]
    boxes: list[np.ndarray]  # (4,) float64 each
    keyframe_hits: int = 0

    @property
    def last_frame(self) -> int:
        return self.frames[-1]

    def add(self, frame: int, box: np.ndarray, keyframe: bool) -> None:
        self.frames.append(frame)
        self.boxes.append(np.asarray(box, np.float64))
        self.keyframe_hits += int(keyframe)

    def predict(self, frame: int) -> np.ndarray:
        """Box (4,) at `frame` extrapolated at the velocity measured over >= VELOCITY_BASELINE frames (or all)."""
        reference = len(self.frames) - 1
        while reference > 0 and self.frames[-1] - self.frames[reference] < VELOCITY_BASELINE:
            reference -= 1
        if reference == len(self.frames) - 1:
            return self.boxes[-1]
        velocity = (self.boxes[-1] - self.boxes[reference]) / (self.frames[-1] - self.frames[reference])
        return self.boxes[-1] + velocity * (frame - self.frames[-1])

    def fill(self, track: FaceTrack, smooth_window: int) -> None:
        """Write this run into `track`'s arrays: interpolated between detections, then median-smoothed."""
        frames = np.asarray(self.frames)
        span = np.arange(frames[0], frames[-1] + 1)
        track.raw_boxes[span] = np.stack([np.interp(span, frames, column) for column in np.stack(self.boxes).T], axis=1)
        track.boxes[span] = median_smooth(track.raw_boxes[span], smooth_window)
        track.present[span] = True
        track.detected[frames] = True


def rejoin_shift(earlier: np.ndarray, later: np.ndarray, max_scale: float) -> float:
    """Distance between the centres of boxes (4,) in mean box sides (square root of the area), or inf when their
    sides differ by more than the factor max_scale."""
    sides = [float(np.sqrt(np.prod(np.maximum(box[2:] - box[:2], 1e-6)))) for box in (earlier, later)]
    if max(sides) > max_scale * min(sides):
        return float("inf")
    centres = (earlier[:2] + earlier[2:]) / 2, (later[:2] + later[2:]) / 2
    return float(np.linalg.norm(centres[1] - centres[0]) / np.mean(sides))


def keyframe_count(frame_count: int, detect_every: int) -> int:
    """Keyframes of a clip of frame_count frames: 0, k, 2k, ... (k = detect_every) and the last frame."""
    return len(set(range(0, frame_count, detect_every)) | {frame_count - 1}) if frame_count else 0


def median_smooth(boxes: np.ndarray, window: int) -> np.ndarray:
    """boxes (T, 4) median-filtered per coordinate over min(window, T) frames made odd, reflected at the ends (NED)."""
    window = min(window, len(boxes))
    window -= 1 - window % 2
    return median_filter(boxes, size=(window, 1), mode="reflect")


@dataclass
class _TrackerState:
    """All tracks so far; detections are matched to the live ones frame by frame, in frame order."""

    config: TrackerConfig
    tracks: list[_Track] = field(default_factory=list)

    def live(self, frame: int) -> list[int]:
        """Indices of the tracks that a detection at `frame` may continue (gap of at most max_gap frames)."""
        return [i for i, track in enumerate(self.tracks) if frame - track.last_frame - 1 <= self.config.max_gap]

    def match(self, frame: int, detections: Detections) -> tuple[list[tuple[int, int]], list[int]]:
        """(track index, detection index) pairs with IoU >= threshold (Hungarian), and the unmatched detections."""
        live = self.live(frame)
        pairs: list[tuple[int, int]] = []
        if live and len(detections):
            predicted = np.stack([self.tracks[i].predict(frame) for i in live])
            iou = box_iou(predicted, detections.boxes.astype(np.float64))
            rows, columns = linear_sum_assignment(iou, maximize=True)
            pairs = [(live[r], c) for r, c in zip(rows, columns) if iou[r, c] >= self.config.iou_threshold]
        matched = {c for _, c in pairs}
        return pairs, [c for c in range(len(detections)) if c not in matched]

    def agrees(self, previous_key: int, key: int, detections: Detections) -> bool:
        """Whether the keyframes previous_key and key see the same faces: every track live at `key` was detected at
        previous_key and matches a detection at `key`, and no detection at `key` is new."""
        pairs, new = self.match(key, detections)
        live = set(self.live(key))
        at_previous = {i for i in live if self.tracks[i].last_frame == previous_key}
        return not new and at_previous == live and {i for i, _ in pairs} == live

    def update(self, frame: int, detections: Detections, keyframe: bool) -> None:
        """Extend the matched tracks with this frame's detections; unmatched detections start new tracks."""
        pairs, new = self.match(frame, detections)
        for track_index, detection_index in pairs:
            self.tracks[track_index].add(frame, detections.boxes[detection_index], keyframe)
        for detection_index in new:
            box = np.asarray(detections.boxes[detection_index], np.float64)
            self.tracks.append(_Track([frame], [box], int(keyframe)))

    def finish(self, frame_count: int) -> list[FaceTrack]:
        """FaceTracks of the tracks detected on at least min_detections keyframes (or on all of a short clip's:
        `keyframe_count`), a face that came back joined to its earlier track (`rejoin`), numbered by first
        appearance."""
        needed = min(self.config.min_detections, keyframe_count(frame_count, self.config.detect_every))
        kept = [track for track in self.tracks if track.keyframe_hits >= needed]
        faces = []
        for track_id, runs in enumerate(self.rejoin(kept)):
            nan = np.full((frame_count, 4), np.nan, np.float32)
            face = FaceTrack(track_id, nan, nan.copy(), np.zeros(frame_count, bool), np.zeros(frame_count, bool))
            for run in runs:
                run.fill(face, self.config.smooth_window)
            faces.append(face)
        return faces

    def rejoin(self, tracks: list[_Track]) -> list[list[_Track]]:
        """Tracks in order of first frame -> faces, each a list of tracks one after the other: a track continues
        the face that ended before it starts nearest to where it starts (`rejoin_shift` within the config's
        rejoin_shift and rejoin_scale), or starts a face of its own."""
        faces: list[list[_Track]] = []
        for track in tracks:
            ended = [face for face in faces if face[-1].last_frame < track.frames[0]]
            shifts = [rejoin_shift(face[-1].boxes[-1], track.boxes[0], self.config.rejoin_scale) for face in ended]
            if self.config.rejoin_shift > 0 and shifts and min(shifts) <= self.config.rejoin_shift:
                ended[int(np.argmin(shifts))].append(track)
            else:
                faces.append([track])
        return faces
