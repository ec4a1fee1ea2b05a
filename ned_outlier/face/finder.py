"""Finding and cutting a face for a classifier, the way the reconstruction finds it.

    faces = FaceFinder()                                       # the reconstruction's detector, tracker, crop, mesh
    matrices = faces.crop_matrices(frames, "clip.mp4", total, progress=False)   # (T, 2, 3) frame -> crop
    for frame, landmarks in faces.video_landmarks(frames, matrices): ...       # (478, 3) mesh in pixels, or None
    face = cut(frame, mesh_box(landmarks))                      # the square around the mesh, 10 % margin a side

The face is found as the reconstruction finds it (MTCNN, tracked and median-smoothed over a video; the largest face of
an image), NED's square crop of it, MediaPipe's 478-point mesh on that crop, and the square box around the mesh's 468
face points with 10 % of its side added on each side, cut from the frame (recognition.evaluate classifies it; the
outlier scorer and the edit-quality benchmark use it too).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from ned_outlier.errors import NoFaceError
from ned_outlier.face.crop import apply_affine, crop_matrices, invert_affine, warp_to_crop
from ned_outlier.face.detector import FaceDetector, small_face_hint
from ned_outlier.face.tracker import select_track, track_faces
from ned_outlier.reconstruction.mediapipe_mesh import MeshLandmarker
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig
from ned_outlier.reconstruction.topology import OUTER_EYE_CORNERS, inner_lip_opening

BOX_MARGIN = 0.1
Meshed = tuple[np.ndarray, np.ndarray | None]  # an RGB uint8 image (H, W, 3) and its face mesh (478, 3) or None


def mesh_box(landmarks: np.ndarray, margin: float = BOX_MARGIN) -> np.ndarray:
    """(..., 478, 3) mesh in pixels -> (..., 4) square x0, y0, x1, y1 around its 468 face points, `margin` of the
    side added on each side."""
    points = landmarks[..., :468, :2]
    low, high = points.min(axis=-2), points.max(axis=-2)
    centre, side = (low + high) / 2, (high - low).max(axis=-1, keepdims=True) * (1 + 2 * margin)
    return np.concatenate([centre - side / 2, centre + side / 2], axis=-1)


def cut(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The pixels of frame (H, W, 3) inside box (4,) x0, y0, x1, y1, rounded and clipped to the frame."""
    x0, y0, x1, y1 = np.round(box).astype(int)
    height, width = frame.shape[:2]
    return frame[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]


def lip_opening(landmarks: np.ndarray) -> float:
    """Inner-lip opening of a (478, 3) mesh in inter-ocular distances (outer eye corners, 3D): scale-free."""
    eyes = np.linalg.norm(landmarks[OUTER_EYE_CORNERS[0]] - landmarks[OUTER_EYE_CORNERS[1]])
    return float(inner_lip_opening(landmarks) / eyes)


class FaceFinder:
    """The reconstruction's face detection, tracking, crop and mesh (settings from `config`), for the classifier."""

    def __init__(self, config: ReconstructionConfig | None = None) -> None:
        self.config = config or ReconstructionConfig()
        self.detector = FaceDetector(self.config.detector)

    def crop_matrices(self, frames: Iterable[np.ndarray], name: str, total: int, progress: bool) -> np.ndarray:
        """Frame -> crop matrices (T, 2, 3) of the largest face tracked over `frames`, about `total` of them (NaN
        where the face is absent); NoFaceError naming `name` when there is none. A clip with fewer keyframes than
        the tracker's min_detections needs a face on all of them (TrackerConfig.min_detections)."""
        with tqdm(total=total, desc="detect faces", unit="frame", disable=not progress) as bar:
            tracking = track_faces(frames, self.detector, self.config.tracker,
                                   progress=lambda done: bar.update(done - bar.n))
        if not tracking.tracks:
            raise NoFaceError(f"{name}: no face found in any of its {tracking.frame_count} frames"
                              + small_face_hint(self.config.detector, *tracking.frame_size))
        track = select_track(tracking)
        return crop_matrices(track.boxes, self.config.crop)

    def video_landmarks(self, frames: Iterable[np.ndarray], matrices: np.ndarray) -> Iterator[Meshed]:
        """Each frame with its (478, 3) mesh in frame pixels where its crop matrix (2, 3) is finite and MediaPipe finds
        the face, else None; MediaPipe tracks from frame to frame and detects afresh after a frame without a face."""
        with MeshLandmarker(self.config.mesh) as mesh:
            tracking = False
            for frame, matrix in zip(frames, matrices):
                points = self._landmarks(mesh, frame, matrix) if np.isfinite(matrix).all() else None
                if points is None and tracking:
                    mesh.reset()
                tracking = points is not None
                yield frame, points

    def image_landmarks(self, images: Iterable[np.ndarray]) -> Iterator[Meshed]:
        """Each image (RGB uint8 (H, W, 3)) with the (478, 3) mesh in pixels of its largest face, or None."""
        with MeshLandmarker(self.config.mesh) as mesh:
            for image in images:
                boxes = self.detector.detect([image])[0].boxes
                if not len(boxes):
                    yield image, None
                    continue
                largest = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
                mesh.reset()
                yield image, self._landmarks(mesh, image, crop_matrices(largest[None], self.config.crop)[0])

    def _landmarks(self, mesh: MeshLandmarker, frame: np.ndarray, matrix: np.ndarray) -> np.ndarray | None:
        """The mesh (478, 3) of the crop of `frame` under frame -> crop `matrix` (2, 3), in frame pixels, or None."""
        points = mesh(warp_to_crop(frame, matrix, self.config.crop.size))
        if points is None:
            return None
        landmarks = np.empty_like(points)
        landmarks[:, :2] = apply_affine(invert_affine(matrix), points[:, :2])
        landmarks[:, 2] = points[:, 2] / np.hypot(*matrix[0, :2])
        return landmarks
