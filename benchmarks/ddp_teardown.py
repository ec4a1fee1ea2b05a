#!/usr/bin/env python
"""Does a two-rank CPU training run end cleanly, again and again, on a busy machine? Launches the renderer's tiny
training (scripts/train_renderer.py, configs/renderer/tiny_cpu.yaml) `--runs` times over two gloo ranks, with
`--load` busy processes beside it, and counts the runs that did not finish within `--timeout` seconds (hung), with
where each rank was (the faulthandler stacks of the hung processes go to OUT/hang_<run>.txt).

    python benchmarks/ddp_teardown.py --runs 25 --load 2        # about 10 minutes on 2 cores

Before training_state.finish_run released the DDP wrappers ahead of the process group, 1 of 25 such runs hung in
~ProcessGroupGloo; the README's DDP note gives the figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.factories import launch_two_cpu_processes  # noqa: E402
import tests.factories as factories  # noqa: E402


def busy() -> None:
    while True:
        pass


def actor_clip(folder: Path) -> tuple[Path, Path]:
    """36 frames of the Pexels clip and their reconstruction (what the renderer's tests train on)."""
    import imageio_ffmpeg

    from ned_outlier.assets import asset_path
    from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct

    clip = folder / "clip.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-ss", "9.6", "-i",
                    str(asset_path("pexels_video")), "-frames:v", "36", "-c:v", "libx264", str(clip)], check=True)
    params = reconstruct(clip, ReconstructionConfig(), progress=False).save(folder / "params.npz")
    return clip, params


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--load", type=int, default=2, help="busy processes beside the runs (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a run counts as hung")
    parser.add_argument("--out", type=Path, default=Path("out/ddp_teardown"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    factories.DDP_TIMEOUT_S = args.timeout
    with tempfile.TemporaryDirectory() as temp:
        clip, params = actor_clip(Path(temp))
        hogs = [multiprocessing.Process(target=busy, daemon=True) for _ in range(args.load)]
        for hog in hogs:
            hog.start()
        hung, seconds = [], []
        try:
            for run in range(1, args.runs + 1):
                start = time.perf_counter()
                try:
                    launch_two_cpu_processes("train_renderer.py", "--config", REPO / "configs/renderer/tiny_cpu.yaml",
                                             "--video", clip, "--params", params, "--output-dir",
                                             Path(temp) / f"run{run}", "--quiet")
                    seconds.append(time.perf_counter() - start)
                except AssertionError as failure:
                    if not str(failure).startswith("hung for"):
                        raise  # a run that failed, not one that hung
                    hung.append(run)
                    (args.out / f"hang_{run}.txt").write_text(str(failure))
                print(f"run {run}: {'HUNG' if run in hung else f'{seconds[-1]:.0f} s'}", flush=True)
        finally:
            for hog in hogs:
                hog.terminate()
    print(f"{len(hung)} of {args.runs} runs hung (timeout {args.timeout} s, {args.load} busy processes); "
          f"finished runs took {min(seconds, default=0):.0f}-{max(seconds, default=0):.0f} s")


if __name__ == "__main__":
    main()
