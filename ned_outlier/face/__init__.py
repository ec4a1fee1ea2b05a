"""Faces in a video: MTCNN detection, tracking with NED's box smoothing, and the square crop transform."""

from ned_outlier.face.crop import (
    CropConfig,
    apply_affine,
    crop_matrices,
    invert_affine,
    warp_to_crop,
    warp_to_frame,
)
from ned_outlier.face.detector import DetectorConfig, Detections, FaceDetector
from ned_outlier.face.tracker import (
    FaceTrack,
    TrackerConfig,
    TrackingResult,
    box_iou,
    select_track,
    track_faces,
)

__all__ = [
    "CropConfig",
    "DetectorConfig",
    "Detections",
    "FaceDetector",
    "FaceTrack",
    "TrackerConfig",
    "TrackingResult",
    "apply_affine",
    "box_iou",
    "crop_matrices",
    "invert_affine",
    "select_track",
    "track_faces",
    "warp_to_crop",
    "warp_to_frame",
]
