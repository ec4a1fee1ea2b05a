"""FaceParams as a per-frame CSV table (AU intensities and head pose), for spreadsheets and plots."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ned_outlier.io.atomic import atomic_output
from ned_outlier.reconstruction.params import FaceParams


def euler_degrees(rotation: np.ndarray) -> np.ndarray:
    """R_head (T, 3, 3) -> (T, 3) pitch, yaw, roll in degrees, R = Rz(roll) Ry(yaw) Rx(pitch); NaN stays NaN."""
    angles = np.full((len(rotation), 3), np.nan)
    valid = ~np.isnan(rotation).any(axis=(1, 2))
    if valid.any():
        angles[valid] = Rotation.from_matrix(rotation[valid]).as_euler("xyz", degrees=True)
    return angles


def write_params_csv(params: FaceParams, path: str | Path) -> Path:
    """One row per frame: frame, time_s, face_found, fit_error, each code by name, pitch/yaw/roll (deg), scale, tx,
    ty (frame pixels). Empty cells where the face was not found."""
    fps = params.video.fps_num / params.video.fps_den
    names = list(params.schema.expression_names) + list(params.schema.mouth_names)
    codes = np.concatenate([params.expression, params.mouth], axis=1)
    pose = np.column_stack([euler_degrees(params.rotation), params.scale, params.translation[:, :2]])
    header = ["frame", "time_s", "face_found", "fit_error", *names, "pitch", "yaw", "roll", "scale", "tx", "ty"]
    with atomic_output(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for index in range(params.num_frames):
            found = bool(params.face_found[index])
            values = [params.fit_error[index], *codes[index], *pose[index]]
            cells = [f"{v:.4f}" if found else "" for v in values]
            writer.writerow([index, f"{index / fps:.4f}", int(found), *cells])
    return Path(path)
