"""Shared test set-up: nothing may reach a model hub; small test media made on the fly with the ffmpeg binary that
imageio-ffmpeg ships."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GLOG_minloglevel", "2")

import subprocess
from pathlib import Path
from typing import Callable

import imageio_ffmpeg
import pytest


@pytest.fixture(scope="session")
def ffmpeg() -> Callable[..., Path]:
    """`ffmpeg(output, *args)` runs ffmpeg with `args` writing `output` and returns it; fails the test on error."""

    def run(output: Path, *args: str) -> Path:
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        result = subprocess.run([*command, *args, str(output)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return output

    return run


@pytest.fixture
def testsrc(ffmpeg) -> Callable[..., Path]:
    """`testsrc(output, *output_args, size=, rate=, seconds=, audio=)`: a moving test pattern, maybe with a tone."""

    def make(output: Path, *output_args: str, size="64x48", rate="25", seconds=1.0, audio=False) -> Path:
        inputs = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}"]
        if audio:
            inputs += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
        return ffmpeg(output, *inputs, "-t", str(seconds), *output_args)

    return make


@pytest.fixture(scope="session")
def tiny_mead(tmp_path_factory, ffmpeg) -> Path:
    """A MEAD-layout set of real clips, actor M001: happy (the Pexels clip's first 12 frames), sad (its first 15),
    neutral (a 12-frame clip without a face)."""
    from ned_outlier.assets import asset_path

    root = tmp_path_factory.mktemp("mead")
    clips = {"happy/level_3": ("pexels_video", 12), "sad/level_3": ("pexels_video", 15),
             "neutral/level_1": ("no_face_video", 12)}
    for folder, (asset, frames) in clips.items():
        (root / "M001/video/front" / folder).mkdir(parents=True)
        ffmpeg(root / "M001/video/front" / folder / "001.mp4", "-i", str(asset_path(asset)), "-frames:v",
               str(frames), "-c:v", "libx264")
    return root


@pytest.fixture(scope="session")
def smile_clip(tmp_path_factory, ffmpeg) -> Path:
    """Frames 230-265 of the Pexels clip (she smiles, no hand at her face), with audio."""
    from ned_outlier.assets import asset_path

    out = tmp_path_factory.mktemp("clip") / "smile.mp4"
    return ffmpeg(out, "-ss", "9.6", "-i", str(asset_path("pexels_video")), "-frames:v", "36", "-c:v", "libx264",
                  "-c:a", "aac")


@pytest.fixture(scope="session")
def smile_params(smile_clip, tmp_path_factory) -> Path:
    """The reconstruction of `smile_clip` (params.npz), made once."""
    from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct

    return reconstruct(smile_clip, ReconstructionConfig(), progress=False).save(
        tmp_path_factory.mktemp("smile_params") / "params.npz")

