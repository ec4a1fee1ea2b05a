"""Pixel measures of an edited video against its source, frame by frame, streamed (one frame of each held at a time).

    regions = (params.landmarks[t, :468, :2] if params.face_found[t] else None for t in range(params.num_frames))
    measures = measure_videos("video.mp4", "video_sad.mp4", regions)
    measures["sharpness_ratio"], measures["pops"], measures["worst_frames"]

Both measures look only at the face region of each frame: the convex hull of the SOURCE frame's mesh, eroded by
ERODE_FRACTION of the face's size, so that the face outline (where the face meets the background, an edge a warp
moves) does not count. Grey is 0.299 R + 0.587 G + 0.114 B in float.

  sharpness ratio  mean |Laplacian| (4-neighbour, 3x3) over the region of the edited frame's grey over the same of
                   the source frame, averaged over face frames (1: as sharp as the source; a blur gives < 1);
  jump             residual_t = grey(edited_t) - grey(source_t); jump_t = mean |residual_t - residual_{t-1}| over
                   the pixels in the regions of both t and t-1, for consecutive face frames; a "pop" is a frame
                   whose jump exceeds POP_THRESHOLD grey levels (a change of the edit that the source did not make:
                   a donor mouth switched, a fold limit that came and went). The residual is taken in image
                   space, so it also moves when the head moves (a warp's residual follows the face): jump_compensated
                   first moves residual_{t-1} by the affine map that best takes the source mesh of t-1 onto that of
                   t (least squares), which leaves the jumps the head's motion does not explain.

JudgePanel runs several classifiers on the same face crops, so one pass of the evaluator judges a video for all.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, zip_longest
from pathlib import Path

import cv2
import numpy as np

from ned_outlier.errors import UserError

GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
ERODE_FRACTION = 0.05  # of the face's size (the larger side of its mesh's bounding box)
POP_THRESHOLD = 4.0  # grey levels
WORST = 5  # frames listed as the worst jumps


def grey(frame: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) -> float32 (H, W) luma, unrounded."""
    return np.asarray(frame, np.float32) @ GREY_WEIGHTS


def face_region(points: np.ndarray, shape: tuple[int, ...], erode_fraction: float = ERODE_FRACTION) -> np.ndarray:
    """Boolean (H, W) mask of the convex hull of `points` (N, 2) x, y in pixels, eroded by erode_fraction of the
    points' larger extent (at least 1 pixel; 0 for erode_fraction 0)."""
    height, width = shape[:2]
    points = np.asarray(points, np.float64)
    mask = np.zeros((height, width), np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    radius = max(1, round(erode_fraction * float(np.ptp(points, axis=0).max()))) if erode_fraction > 0 else 0
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask.astype(bool)


def laplacian_energy(image: np.ndarray, region: np.ndarray) -> float:
    """Mean |4-neighbour Laplacian| of the float (H, W) `image` over the True pixels of `region` (NaN if none);
    the frame's border is reflected."""
    if not region.any():
        return float("nan")
    laplacian = cv2.Laplacian(np.asarray(image, np.float32), cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101)
    return float(np.abs(laplacian[region]).mean(dtype=np.float64))


@dataclass(frozen=True)
class FrameMeasure:
    """One face frame: its index, the sharpness ratio (NaN where the source's region is flat) and the jump from
    the frame before, plain and head-motion compensated (NaN for the first frame of a run of face frames)."""

    frame: int
    sharpness_ratio: float
    jump: float
    jump_compensated: float = float("nan")


def mesh_motion(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The (2, 3) affine map taking the points `before` (N, 2) onto `after` (N, 2), by least squares."""
    before = np.asarray(before, np.float64)
    design = np.hstack([before, np.ones((len(before), 1))])
    solution, *_ = np.linalg.lstsq(design, np.asarray(after, np.float64), rcond=None)
    return solution.T


def _mean_abs_difference(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(a[where] - b[where]).mean(dtype=np.float64)) if where.any() else float("nan")


def compare_frames(sources: Iterable[np.ndarray], edits: Iterable[np.ndarray],
                   regions: Iterable[np.ndarray | None], erode_fraction: float = ERODE_FRACTION
                   ) -> Iterator[FrameMeasure]:
    """A FrameMeasure for each face frame (its `regions` entry the source mesh's points (N, 2), None for a frame
    without the face) of the paired RGB frames; ValueError when the three sequences differ in length. The head
    motion is fitted between corresponding points: where N changes from one frame to the next, jump_compensated
    is NaN."""
    previous = None  # (residual, region, points) of the frame before, when it was a face frame
    end = object()
    for index, (source, edit, points) in enumerate(zip_longest(sources, edits, regions, fillvalue=end)):
        if source is end or edit is end or points is end:
            ended = [name for name, item in (("source", source), ("edit", edit), ("regions", points)) if item is end]
            raise ValueError(f"the sequences end at different frames: {', '.join(ended)} ended at frame {index}, "
                             "the others did not")
        if source.shape != edit.shape:
            raise ValueError(f"frame {index}: the edit is {edit.shape}, the source {source.shape}")
        if points is None:
            previous = None
            continue
        region = face_region(points, source.shape, erode_fraction)
        source_grey, edit_grey = grey(source), grey(edit)
        sharp_source = laplacian_energy(source_grey, region)
        ratio = laplacian_energy(edit_grey, region) / sharp_source if sharp_source > 0 else float("nan")
        residual = edit_grey - source_grey
        jump = compensated = float("nan")
        if previous is not None:
            before, before_region, before_points = previous
            jump = _mean_abs_difference(residual, before, region & before_region)
            if len(before_points) == len(points):  # the same mesh points: they correspond
                motion, size = mesh_motion(before_points, points), (region.shape[1], region.shape[0])
                moved = cv2.warpAffine(before, motion, size, flags=cv2.INTER_LINEAR)
                moved_region = cv2.warpAffine(before_region.astype(np.uint8), motion, size, flags=cv2.INTER_NEAREST)
                compensated = _mean_abs_difference(residual, moved, region & moved_region.astype(bool))
        previous = (residual, region, points)
        yield FrameMeasure(index, ratio, jump, compensated)


def summarise_frames(measures: Iterable[FrameMeasure], threshold: float = POP_THRESHOLD, worst: int = WORST,
                     keep_frames: bool = True) -> dict:
    """face_frames; sharpness_ratio (mean over the frames where it is defined, None if none); jumps (frames with a
    jump), mean_jump, max_jump; pops (frames whose jump > threshold; None when no jump was measured) and pop_frames
    (their indices); worst_frames: [frame, jump] of the `worst` largest jumps, largest first; the same with
    _compensated for the head-motion compensated jumps; with keep_frames the per-frame lists too."""
    measures = list(measures)  # a few numbers a frame
    ratios = [m.sharpness_ratio for m in measures if math.isfinite(m.sharpness_ratio)]
    summary = {"face_frames": len(measures), "sharpness_ratio": float(np.mean(ratios)) if ratios else None,
               "pop_threshold": threshold}
    for suffix in ("", "_compensated"):
        jumps = [(m.frame, getattr(m, "jump" + suffix)) for m in measures]
        jumps = [(frame, jump) for frame, jump in jumps if math.isfinite(jump)]
        ranked = sorted(jumps, key=lambda frame_jump: -frame_jump[1])
        summary |= {
            "jumps" + suffix: len(jumps),
            "mean_jump" + suffix: float(np.mean([j for _, j in jumps])) if jumps else None,
            "max_jump" + suffix: ranked[0][1] if ranked else None,
            "pops" + suffix: sum(j > threshold for _, j in jumps) if jumps else None,
            "pop_frames" + suffix: [f for f, j in jumps if j > threshold],
            "worst_frames" + suffix: [[f, round(j, 3)] for f, j in ranked[:worst]],
        }
    if keep_frames:
        summary["frames"] = {"frame": [m.frame for m in measures],
                             "sharpness_ratio": [_finite(m.sharpness_ratio) for m in measures],
                             "jump": [_finite(m.jump) for m in measures],
                             "jump_compensated": [_finite(m.jump_compensated) for m in measures]}
    return summary


def _finite(value: float, digits: int = 4) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def measure_videos(source: str | Path, edit: str | Path, regions: Iterable[np.ndarray | None],
                   frames: int | None = None, **options) -> dict:
    """summarise_frames of compare_frames over the first `frames` (None: all) frames of two videos, decoded side by
    side; `options` go to summarise_frames. UserError when the videos differ in frame count or size."""
    from ned_outlier.io.video import VideoReader

    sources, edits = (islice(VideoReader(path), frames) for path in (source, edit))
    try:
        return summarise_frames(compare_frames(sources, edits, regions), **options)
    except ValueError as error:
        raise UserError(f"{edit} against {source}: {error}") from None


class JudgePanel:
    """Several classifiers as one: predict_proba concatenates their probabilities (one crop, every judge), and
    split() turns records judged by the panel into one list of records per judge.

        panel = JudgePanel({"fer": create_model("fer2013-minixception"), "cnn": create_model(...)})
        evaluation = evaluate_video(path, panel, faces)
        per_judge = panel.split(evaluation.records)      # {"fer": [Record, ...], "cnn": [...]}
    """

    def __init__(self, judges: dict[str, object]) -> None:
        if not judges:
            raise ValueError("a panel needs at least one judge")
        self.judges = dict(judges)
        self.labels = tuple(f"{name}:{label}" for name, judge in self.judges.items() for label in judge.labels)
        bounds = np.cumsum([0] + [len(judge.labels) for judge in self.judges.values()])
        self._slices = {name: slice(a, b) for name, a, b in zip(self.judges, bounds[:-1], bounds[1:])}

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([judge.predict_proba(images) for judge in self.judges.values()], axis=1)

    def split(self, records: Sequence) -> dict[str, list]:
        """{judge name: copies of `records` with only that judge's probabilities}."""
        return {name: [record if not record.has_face
                       else dataclasses.replace(record, probabilities=record.probabilities[part])
                       for record in records]
                for name, part in self._slices.items()}


def target_rate(records: Sequence, labels: Sequence[str], target: str, frames: set[int] | None = None
                ) -> tuple[float | None, int]:
    """(fraction of the face records whose top class is `target`, how many face records) over the records whose
    frame is in `frames` (None: all); the rate is None where there is no such record or `target` is not a label."""
    faces = [r for r in records if r.has_face and (frames is None or r.frame in frames)]
    if not faces or target not in labels:
        return None, len(faces)
    index = list(labels).index(target)
    return float(np.mean([int(np.argmax(r.probabilities)) == index for r in faces])), len(faces)


def top_class_frames(records: Sequence, labels: Sequence[str], label: str) -> set[int]:
    """The frames of the face records whose top class is `label` (empty if it is not one of `labels`)."""
    if label not in labels:
        return set()
    index = list(labels).index(label)
    return {r.frame for r in records if r.has_face and int(np.argmax(r.probabilities)) == index}
