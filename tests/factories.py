"""Small hand-made objects the tests share, and the two-process launch of the training scripts."""

import os
import re
import subprocess
import sys
from pathlib import Path

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


REPO = Path(__file__).resolve().parent.parent
# A guard against a hung rank, not a speed check: the runs take about a minute alone and several times that on a
# machine that is busy with other work.
DDP_TIMEOUT_S = 900


def launch_two_cpu_processes(script: str, *arguments) -> subprocess.CompletedProcess:
    """`accelerate launch` of scripts/<script> with two gloo ranks on the CPU (ACCELERATE_USE_CPU=1 with --multi_gpu:
    `--cpu --num_processes 2` would run one process); the finished process, its return code asserted 0."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO / "scripts" / script), *map(str, arguments)]
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=DDP_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def per_process_checksums(stdout: str, what: str) -> list[str]:
    """The checksums a training script prints as "<what> checksum per process: a b"."""
    return re.search(rf"{what} checksum per process: (.+)", stdout).group(1).split()
