#!/usr/bin/env python
"""Reconstruction throughput and peak memory on the Pexels clip, and on the same clip looped 5 times.

Each measurement runs in a fresh process (so peak RSS is that run's own) and covers the whole job: decoding, face
detection and tracking, the face mesh, the fit, and writing params.npz + params.csv; `--preview` adds the mesh-overlay
video. Prints one row per video:

    python benchmarks/reconstruct.py [--preview] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def run_child(video: Path, out: Path, preview: bool, threads: int) -> None:
    """Reconstruct `video` in this process and print {frames, seconds, peak_rss_mb} as JSON."""
    import torch

    torch.set_num_threads(threads)
    from ned_outlier.reconstruction.export import write_params_csv
    from ned_outlier.reconstruction.reconstructor import reconstruct
    from ned_outlier.viz import write_mesh_preview

    start = time.perf_counter()
    params = reconstruct(video, progress=False)
    params.save(out / "params.npz")
    write_params_csv(params, out / "params.csv")
    if preview:
        write_mesh_preview(video, params, out / "preview.mp4", progress=False)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": params.num_frames, "found": int(params.face_found.sum()), "seconds": seconds,
                      "peak_rss_mb": peak_mb}))


def loop_video(video: Path, times: int, out: Path) -> Path:
    """The clip repeated `times` times (stream copy, no re-encoding)."""
    import imageio_ffmpeg

    target = out / f"looped_{times}x.mp4"
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", str(times - 1), "-i", str(video),
               "-c", "copy", str(target)]
    subprocess.run(command, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preview", action="store_true", help="also write the mesh-overlay preview video")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--loops", type=int, default=5, help="length of the long video in clips (default: 5)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.child_out, args.preview, args.threads)
        return

    from ned_outlier.assets import asset_path

    clip = asset_path("pexels_video")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = {"pexels 1x": clip, f"pexels {args.loops}x": loop_video(clip, args.loops, tmp)}
        print(f"{'video':12s} {'frames':>7s} {'found':>7s} {'seconds':>8s} {'frames/s':>9s} {'peak RSS MB':>12s}")
        for name, video in videos.items():
            command = [sys.executable, __file__, "--child", str(video), "--child-out", str(tmp), "--threads",
                       str(args.threads)] + (["--preview"] if args.preview else [])
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"{name:12s} {result['frames']:7d} {result['found']:7d} {result['seconds']:8.1f} "
                  f"{result['frames'] / result['seconds']:9.1f} {result['peak_rss_mb']:12.0f}")


if __name__ == "__main__":
    main()
