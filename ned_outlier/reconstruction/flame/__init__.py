"""FLAME in pure PyTorch: the user's FLAME 2020 model file read without chumpy (never downloaded), a batched
differentiable layer (linear blend skinning), and DECA's 68 landmarks with the yaw-dependent jaw contour."""

from __future__ import annotations

from ned_outlier.reconstruction.flame.landmarks import (
    LANDMARK_EMBEDDING_CONFIG_KEY,
    LANDMARK_EMBEDDING_ENV,
    LANDMARK_EMBEDDING_FLAG,
    FlameLandmarks,
    LandmarkEmbedding,
    barycentric_landmarks,
    contour_bins,
    head_yaw_degrees,
    load_landmark_embedding,
    resolve_landmark_embedding_path,
)
from ned_outlier.reconstruction.flame.layer import FlameLayer, FlameOutput, axis_angle_to_matrix
from ned_outlier.reconstruction.flame.model_file import (
    FLAME_MODEL_CONFIG_KEY,
    FLAME_MODEL_ENV,
    FLAME_MODEL_FLAG,
    JOINT_NAMES,
    FlameModel,
    load_flame_model,
    resolve_flame_path,
)

__all__ = [
    "FLAME_MODEL_CONFIG_KEY", "FLAME_MODEL_ENV", "FLAME_MODEL_FLAG", "JOINT_NAMES", "LANDMARK_EMBEDDING_CONFIG_KEY",
    "LANDMARK_EMBEDDING_ENV", "LANDMARK_EMBEDDING_FLAG", "FlameLandmarks", "FlameLayer", "FlameModel", "FlameOutput",
    "LandmarkEmbedding", "axis_angle_to_matrix", "barycentric_landmarks", "contour_bins", "head_yaw_degrees",
    "load_flame_model", "load_landmark_embedding", "resolve_flame_path", "resolve_landmark_embedding_path",
]
