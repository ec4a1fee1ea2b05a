"""Pictures for people: the fitted mesh drawn over video frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ned_outlier.io.atomic import ensure_not_input
from ned_outlier.io.video import VideoReader, VideoWriter
from ned_outlier.reconstruction.mediapipe_au import BACKEND
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.topology import mesh_edges

MESH_COLOUR = (80, 255, 120)  # RGB


def draw_mesh(
    frame: np.ndarray, vertices: np.ndarray, colour: tuple[int, int, int] = MESH_COLOUR, opacity: float = 0.55,
    edges: np.ndarray | None = None,
) -> np.ndarray:
    """Copy of frame (H, W, 3) with the mesh of vertices (V, 2+) in frame pixels drawn as thin translucent lines
    along `edges` (E, 2) vertex pairs (None: MediaPipe's face mesh, whose topology the vertices then have); with
    `edges` empty, each vertex as a dot."""
    canvas = frame.copy()
    points = np.round(vertices[:, :2] * 16).astype(np.int32)  # 4 fractional bits: sub-pixel anti-aliased lines
    edges = mesh_edges() if edges is None else np.asarray(edges).reshape(-1, 2)
    if len(edges):
        cv2.polylines(canvas, list(points[edges]), isClosed=False, color=colour, thickness=1, lineType=cv2.LINE_AA,
                      shift=4)
    else:
        for x, y in points[np.isfinite(vertices[:, :2]).all(1)]:
            cv2.circle(canvas, (int(x), int(y)), 12, colour, -1, cv2.LINE_AA, shift=4)  # dots of 0.75 px radius
    return cv2.addWeighted(canvas, opacity, frame, 1.0 - opacity, 0.0)


def write_mesh_preview(video: str | Path, params: FaceParams, out: str | Path, progress: bool = True) -> Path:
    """Stream `video` with the fitted mesh drawn on every frame where the face was found (a mediapipe-au mesh as its
    edges, another backend's as its vertices); same fps (or frame timestamps), size, audio."""
    ensure_not_input(out, video)
    reader = VideoReader(video)
    info = reader.info
    edges = None if params.schema.backend == BACKEND else np.empty((0, 2), int)  # another topology: its vertices
    with VideoWriter(out, info.fps, info.width, info.height, audio_from=video, times=reader.frame_times()) as writer:
        frames = tqdm(reader, total=params.num_frames, desc="preview", disable=not progress)
        for index, frame in enumerate(frames):
            found = index < params.num_frames and params.face_found[index]
            writer.write(draw_mesh(frame, params.vertices[index], edges=edges) if found else frame)
    return Path(out)
