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
                   space, so it also moves when the face moves (a warp's residual follows the face): jump_compensated
                   first moves residual_{t-1} along the source's own optical flow from t to t-1 (OpenCV's DIS, over
                   the box of both regions), leaving out the pixels where that flow and the flow from t-1 to t
                   disagree (occluded or uncovered), as in the warping error of Lai et al., "Learning blind video
                   temporal consistency", ECCV 2018: what is left is the change that the source's motion (head, jaw,
                   lips, brows) does not explain. The mesh's landmarks are not used for this: their jitter of a
                   pixel, spread over small triangles, moves a residual's edges more than the face does.

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
FLOW_MARGIN = 16  # pixels around the regions' box that the optical flow also sees
# Lai et al.'s occlusion test: a pixel is kept when |F_back + F_forward(at the pixel F_back leads to)|^2 <
# CONSISTENCY_SCALE (|F_back|^2 + |F_forward there|^2) + CONSISTENCY_OFFSET (pixels^2).
CONSISTENCY_SCALE, CONSISTENCY_OFFSET = 0.01, 0.5


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
    the frame before, plain and face-motion compensated (NaN for the first frame of a run of face frames)."""

    frame: int
    sharpness_ratio: float
    jump: float
    jump_compensated: float = float("nan")


def _flow(from_grey: np.ndarray, to_grey: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 dense optical flow: pixel p of `from_grey` (H, W) is at p + flow[p] in `to_grey`."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    as_bytes = [np.clip(np.round(image), 0, 255).astype(np.uint8) for image in (from_grey, to_grey)]
    return dis.calc(*as_bytes, None)


def _sample(image: np.ndarray, grid: np.ndarray, flow: np.ndarray, interpolation: int) -> np.ndarray:
    """`image` (H, W[, C]) read at grid + flow ((H, W, 2) each), 0 outside it."""
    where = (grid + flow).astype(np.float32)
    return cv2.remap(image, where[..., 0], where[..., 1], interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def move_with_flow(image: np.ndarray, region: np.ndarray, source_before: np.ndarray, source_now: np.ndarray,
                   box_region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`image` (H, W) float and its `region` (H, W) bool of frame t-1 moved to frame t with the optical flow of the
    source's grey frames `source_before` -> `source_now` (H, W), inside the box of `region` | `box_region` (plus
    FLOW_MARGIN px). Returns the moved image (0 outside the box) and the moved region, False outside the box,
    where the moved pixel came from outside `region` and where the backward and forward flows disagree."""
    ys, xs = np.nonzero(region | box_region)
    moved, moved_region = np.zeros_like(image, np.float32), np.zeros(image.shape[:2], bool)
    if not len(xs):
        return moved, moved_region
    height, width = image.shape[:2]
    x0, y0 = max(xs.min() - FLOW_MARGIN, 0), max(ys.min() - FLOW_MARGIN, 0)
    x1, y1 = min(xs.max() + 1 + FLOW_MARGIN, width), min(ys.max() + 1 + FLOW_MARGIN, height)
    box = np.s_[y0:y1, x0:x1]
    backward = _flow(source_now[box], source_before[box])   # pixel of t -> where it was at t-1
    forward = _flow(source_before[box], source_now[box])
    grid = np.dstack(np.meshgrid(np.arange(x1 - x0), np.arange(y1 - y0))).astype(np.float32)
    forward_there = _sample(forward, grid, backward, cv2.INTER_LINEAR)
    mismatch = np.sum((backward + forward_there) ** 2, axis=2)
    consistent = mismatch < CONSISTENCY_SCALE * (np.sum(backward ** 2, axis=2) + np.sum(forward_there ** 2, axis=2)
                                                 ) + CONSISTENCY_OFFSET
    layers = np.dstack([image[box], region[box]]).astype(np.float32)
    sampled = _sample(layers, grid, backward, cv2.INTER_LINEAR)
    moved[box] = sampled[..., 0]
    moved_region[box] = consistent & (sampled[..., 1] > 0.999)  # every pixel it interpolates from is in the region
    return moved, moved_region


def _mean_abs_difference(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(a[where] - b[where]).mean(dtype=np.float64)) if where.any() else float("nan")


def compare_frames(sources: Iterable[np.ndarray], edits: Iterable[np.ndarray],
                   regions: Iterable[np.ndarray | None], erode_fraction: float = ERODE_FRACTION
                   ) -> Iterator[FrameMeasure]:
    """A FrameMeasure for each face frame (its `regions` entry the source mesh's points (N, 2), None for a frame
    without the face) of the paired RGB frames; ValueError when the three sequences differ in length."""
    previous = None  # (residual, region, source grey) of the frame before, when it was a face frame
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
            before, before_region, before_grey = previous
            jump = _mean_abs_difference(residual, before, region & before_region)
            moved, moved_region = move_with_flow(before, before_region, before_grey, source_grey, region)
            compensated = _mean_abs_difference(residual, moved, region & moved_region)
        previous = (residual, region, source_grey)
        yield FrameMeasure(index, ratio, jump, compensated)


def summarise_frames(measures: Iterable[FrameMeasure], threshold: float = POP_THRESHOLD, worst: int = WORST,
                     keep_frames: bool = True) -> dict:
    """face_frames; sharpness_ratio (mean over the frames where it is defined, None if none); jumps (frames with a
    jump), mean_jump, max_jump; pops (frames whose jump > threshold; None when no jump was measured) and pop_frames
    (their indices); worst_frames: [frame, jump] of the `worst` largest jumps, largest first; the same with
    _compensated for the face-motion compensated jumps; with keep_frames the per-frame lists too."""
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
