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
