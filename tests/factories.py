"""Small hand-made objects the tests share, and the two-process launch of the training scripts."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.reconstruction.params import FaceParams, VideoMeta
from ned_outlier.training_state import LEFTOVER_DDP_WARNING


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


def recorded_from(params: FaceParams, video: Path) -> FaceParams:
    """`params` as a reconstruction of `video` records it (VideoMeta.of: size, rate, frame counts, fingerprint)."""
    from dataclasses import replace

    from ned_outlier.io.video import VideoReader

    return replace(params, video=VideoMeta.of(VideoReader(video), params.num_frames))


def saved_params_of(video: Path, path: Path) -> Path:
    """Zero-code FaceParams of every frame of `video`, recorded as its reconstruction, saved at `path`."""
    from ned_outlier.io.video import VideoReader

    _, schema = mediapipe_au_model()
    frames = sum(1 for _ in VideoReader(video))
    params = face_params(np.zeros((frames, len(schema.expression_names))), np.zeros((frames, len(schema.mouth_names))))
    return recorded_from(params, video).save(path)


def face_clip(path: Path, frames: int, without_face: range = range(0), rate: int = 25) -> Path:
    """A still 256x256 video of skimage's astronaut (her face box about 92 px wide, near x 82-174, y 61-176), the
    face painted over with a flat grey in the frames `without_face`, written with the project's VideoWriter."""
    from fractions import Fraction

    import skimage.data

    from ned_outlier.io.video import VideoWriter

    portrait = np.ascontiguousarray(skimage.data.astronaut()[0:256, 96:352])
    blank = portrait.copy()
    blank[30:210, 50:210] = 128
    with VideoWriter(path, Fraction(rate), 256, 256) as writer:
        for index in range(frames):
            writer.write(blank if index in without_face else portrait)
    return path


REPO = Path(__file__).resolve().parent.parent
# A guard against a hung rank, not a speed check: the runs take about a minute alone and several times that on a
# machine that is busy with other work.
DDP_TIMEOUT_S = 900


def experiment_setting(folder: Path) -> dict[str, str]:
    """A tiny setting of the outlier experiment in `folder`: a SynthMEAD of one clip (bytes b"frames", at the path
    `experiment_clip` gives) and truth.csv, a training config and a SynthMEAD config drawing with its own edit config
    (edit.yaml). Returns ExperimentConfig's keys data, training_config and synthmead_config."""
    (folder / "truth.csv").write_text("path,actor\n")
    (folder / "training.yaml").write_text("train: {epochs: 8}\n")
    (folder / "edit.yaml").write_text("renderer: warp\n")
    (folder / "synthmead.yaml").write_text(f"sources: {{a: {{media: a.jpg}}}}\nedit_config: {folder / 'edit.yaml'}\n")
    experiment_clip(folder).parent.mkdir(parents=True, exist_ok=True)
    experiment_clip(folder).write_bytes(b"frames")
    return {"data": str(folder), "training_config": str(folder / "training.yaml"),
            "synthmead_config": str(folder / "synthmead.yaml")}


def experiment_clip(folder: Path) -> Path:
    """The one clip of experiment_setting(folder)."""
    return folder / "S001" / "video" / "front" / "sad" / "level_1" / "001.mp4"


def launch_two_cpu_processes(script: str, *arguments) -> subprocess.CompletedProcess:
    """`accelerate launch` of scripts/<script> with two gloo ranks on the CPU (ACCELERATE_USE_CPU=1 with --multi_gpu:
    `--cpu --num_processes 2` would run one process); the finished process, its return code asserted 0. Each run
    rendezvouses on a port of its own (not accelerate's fixed 29500, which an earlier run or another job may hold).

    A run still going after DDP_TIMEOUT_S is aborted with SIGABRT, on which every Python process of it (launcher and
    ranks: PYTHONFAULTHANDLER) prints where each of its threads is, and the test fails with those stacks."""
    with start_two_cpu_processes(script, *arguments) as process:
        try:
            stdout, stderr = process.communicate(timeout=DDP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stdout, stderr = _abort_with_stacks(process)
            stacks = "\n".join(line for line in stderr.splitlines() if "(total: " not in line)  # not the module lists
            raise AssertionError(f"hung for {DDP_TIMEOUT_S} s; stdout:\n{stdout[-2000:]}\nstacks:\n{stacks[-12000:]}")
    assert process.returncode == 0, stderr[-3000:]
    assert LEFTOVER_DDP_WARNING not in stderr  # finish_run's order, which keeps the end of the run from hanging
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def start_two_cpu_processes(script: str, *arguments) -> subprocess.Popen:
    """The running `accelerate launch` of launch_two_cpu_processes (stdout and stderr piped, text)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(REPO / "scripts" / script), *map(str, arguments)]
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "PYTHONFAULTHANDLER": "1",
                   "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)


def kill_when(process: subprocess.Popen, condition, timeout_s: float = DDP_TIMEOUT_S) -> None:
    """SIGKILL the launch `process` and its ranks as soon as `condition()` holds (polled every 10 ms), as a crash
    or an out-of-memory kill would; AssertionError when the run ends, or `timeout_s` passes, first."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended (code {process.returncode}) before it could be killed")
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing to kill the run on after {timeout_s} s")
        time.sleep(0.01)
    _signal_all([*_children(process.pid), process.pid], signal.SIGKILL)
    process.communicate()


def _abort_with_stacks(process: subprocess.Popen) -> tuple[str, str]:
    """SIGABRT to the launcher and its ranks (the launcher starts each rank in a session of its own, so they are
    found by parent, ranks first), SIGKILL to whatever is left a minute later; what they printed."""
    processes = [*_children(process.pid), process.pid]
    _signal_all(processes, signal.SIGABRT)
    try:
        return process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        _signal_all(processes, signal.SIGKILL)
        return process.communicate()


def _signal_all(pids: list[int], signal_number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def per_process_checksums(stdout: str, what: str) -> list[str]:
    """The checksums a training script prints as "<what> checksum per process: a b"."""
    return re.search(rf"{what} checksum per process: (.+)", stdout).group(1).split()


@contextlib.contextmanager
def killed_after_a_checkpoint(trainer_module):
    """Within the block, `trainer_module`'s runs die (RuntimeError "killed") right after their next resume-state save,
    as a run killed just after a checkpoint; the block expects that death."""
    save = trainer_module.save_resume_state

    def save_then_die(accelerator, checkpoints):
        save(accelerator, checkpoints)
        raise RuntimeError("killed")

    trainer_module.save_resume_state = save_then_die
    try:
        with pytest.raises(RuntimeError, match="killed"):
            yield
    finally:
        trainer_module.save_resume_state = save
