"""Small hand-made objects the tests share."""

import numpy as np

from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.reconstruction.params import FaceParams, VideoMeta


def face_params(expression, mouth, found=None) -> FaceParams:
    """FaceParams of the mediapipe-au schema with the given codes (T, E) and (T, M); zero geometry."""
    _, schema = mediapipe_au_model()
    frames = len(expression)
    zeros = lambda *shape: np.zeros((frames, *shape), np.float32)  # noqa: E731
    return FaceParams(
        schema=schema, video=VideoMeta("v.mp4", 64, 64, 25, 1, frames), track_id=0,
        identity=np.zeros((478, 3), np.float32),
        face_found=np.ones(frames, bool) if found is None else np.asarray(found),
        crop_matrix=zeros(2, 3).astype(np.float64), rotation=zeros(3, 3), scale=zeros(), translation=zeros(3),
        expression=np.asarray(expression, np.float32), mouth=np.asarray(mouth, np.float32),
        vertices=zeros(478, 3), landmarks=zeros(478, 3), fit_error=zeros(), mouth_occluded=np.zeros(frames, bool),
    )
