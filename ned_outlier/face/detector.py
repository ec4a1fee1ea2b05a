"""MTCNN face detection (facenet-pytorch, NED's detector) on batches of RGB frames.

    detector = FaceDetector(DetectorConfig())
    per_frame = detector.detect(frames)        # list of Detections, one per frame

Frames are RGB uint8 arrays (H, W, 3). A frame whose long side exceeds `max_side` is downscaled (cv2 INTER_AREA)
before detection and the boxes and landmarks are mapped back to frame pixels. Coordinates follow cv2's convention:
pixel centres at integer coordinates. MTCNN's own sub-pixel convention is undocumented; its boxes jitter by several
pixels from frame to frame anyway (the tracker smooths them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ned_outlier.assets import asset_path


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of the MTCNN detector.

    min_face_size: smallest face MTCNN searches for, in pixels of the detection image (the frame downscaled so that
        its long side is at most max_side), so for videos larger than max_side it is relative to the frame: 80 is
        12.5 % of the long side. A larger value means fewer pyramid levels (faster); MTCNN still finds faces down
        to about half this size. Talking-head faces are large: on the Pexels clip the face is about 215 px wide.
    thresholds: MTCNN's P-, R- and O-net score thresholds (facenet-pytorch's defaults).
    min_score: detections with a final score below this are dropped.
    max_side: frames whose long side exceeds this are downscaled before detection.
    batch_size: frames per MTCNN call.
    device: torch device of the three networks, e.g. "cpu" or "cuda:0".
    """

    min_face_size: int = 80
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    min_score: float = 0.9
    max_side: int = 640
    batch_size: int = 8
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.min_face_size < 12:
            raise ValueError(f"min_face_size must be at least 12 (MTCNN's cell), got {self.min_face_size}")
        if len(self.thresholds) != 3 or not all(0.0 < value < 1.0 for value in self.thresholds):
            raise ValueError(f"thresholds must be three numbers in (0, 1), got {self.thresholds}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if self.max_side < 64 or self.batch_size < 1:
            raise ValueError(f"max_side must be >= 64 and batch_size >= 1, got {self.max_side}, {self.batch_size}")


@dataclass(frozen=True)
class Detections:
    """The faces found in one frame, in frame pixels (K may be 0).

    boxes: (K, 4) float32 x0, y0, x1, y1.
    scores: (K,) float32 MTCNN O-net probabilities.
    landmarks: (K, 5, 2) float32 x, y of the eyes, the nose tip and the mouth corners, eyes and corners in image
        left-to-right order (a frontal face's right eye comes first).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def from_boxes(boxes: np.ndarray, scores: np.ndarray | None = None) -> Detections:
        """Detections of boxes (K, 4) with scores (K,) (default 1) and zero landmarks (for tests and fakes)."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.ones(len(boxes), np.float32) if scores is None else np.asarray(scores, np.float32)
        return Detections(boxes, scores, np.zeros((len(boxes), 5, 2), np.float32))


class FaceDetector:
    """facenet-pytorch's MTCNN (weights ship inside the wheel) with all faces kept, largest first."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        asset_path("mtcnn_weights")  # a UserError naming the pip command when facenet-pytorch is missing
        from facenet_pytorch import MTCNN

        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=self.config.min_face_size,
            thresholds=list(self.config.thresholds),
            device=torch.device(self.config.device),
        )

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each of `frames` (RGB uint8 (H, W, 3)); runs of equal-size frames are batched."""
        for frame in frames:
            _check_frame(frame)
        detections: list[Detections] = []
        for start, stop in _equal_size_batches(frames, self.config.batch_size):
            detections.extend(self._detect_batch(frames[start:stop]))
        return detections

    def _detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for frames of one size: downscale, run MTCNN, map back to frame pixels."""
        height, width = frames[0].shape[:2]
        small_size = detection_size(width, height, self.config.max_side)
        if min(small_size) < self.config.min_face_size:  # MTCNN's image pyramid would be empty (and it crashes)
            return [Detections.from_boxes(np.zeros((0, 4))) for _ in frames]
        batch = np.stack([_resize(frame, small_size) for frame in frames])
        boxes, scores, landmarks = self._mtcnn.detect(batch, landmarks=True)
        scale = np.array([width / small_size[0], height / small_size[1]])
        return [
            _to_frame_detections(*per_frame, scale, self.config.min_score)
            for per_frame in zip(boxes, scores, landmarks)
        ]


def detection_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) of the image MTCNN sees: the frame scaled so that its long side is at most max_side."""
    factor = min(1.0, max_side / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def small_face_hint(config: DetectorConfig, width: int, height: int) -> str:
    """A clause to append to "no face found" when frames of width x height are small next to the detector's
    min_face_size (the short side MTCNN sees under twice it: faces there may be too small for it), else ''."""
    if width <= 0 or height <= 0:
        return ""
    small = detection_size(width, height, config.max_side)
    short, size = min(small), config.min_face_size
    if short >= 2 * size:
        return ""
    scale = width / small[0]
    fix = (f"lower detector.min_face_size (12 at the least, e.g. {max(12, short // 2)}) in the reconstruction config "
           "(configs/reconstruct/default.yaml)")
    if short < size:
        return (f" (the detector's minimum face size, detector.min_face_size {size} px, is larger than these "
                f"{width}x{height} frames, so no face was looked for: {fix})")
    return (f" (in these {width}x{height} frames faces under about {round(size * scale / 2)} px are not found, "
            f"detector.min_face_size being {size} px: if the face is small, {fix})")


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """frame (H, W, 3) resized to size (w, h) with area averaging; unchanged when already that size."""
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _to_frame_detections(boxes, scores, landmarks, scale: np.ndarray, min_score: float) -> Detections:
    """MTCNN's per-image output (None when nothing was found) as Detections in frame pixels, scores >= min_score.

    scale (2,): frame size / detection-image size per axis.
    """
    if boxes is None:
        return Detections.from_boxes(np.zeros((0, 4)))
    scores = np.asarray(scores, dtype=np.float32)
    keep = scores >= min_score
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 2, 2)[keep]
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)[keep]
    return Detections(_to_frame_pixels(boxes, scale).reshape(-1, 4), scores[keep], _to_frame_pixels(landmarks, scale))


def _to_frame_pixels(points: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Points (..., 2) in the detection image as float32 frame pixels: x -> (x + 0.5) * scale - 0.5.

    With pixel centres at integer coordinates this is the mapping cv2.resize uses.
    """
    return ((points + 0.5) * scale - 0.5).astype(np.float32)


def _equal_size_batches(frames: Sequence[np.ndarray], batch_size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) index ranges of at most batch_size consecutive frames that share one shape."""
    start = 0
    for stop in range(1, len(frames) + 1):
        if stop == len(frames) or stop - start == batch_size or frames[stop].shape != frames[start].shape:
            yield start, stop
            start = stop


def _check_frame(frame: np.ndarray) -> None:
    """ValueError unless frame is an RGB uint8 array (H, W, 3)."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"frames must be RGB uint8 arrays (H, W, 3), got {type(frame).__name__} {shape}")
