#!/usr/bin/env python
"""End-to-end edit throughput and peak memory on the Pexels clip (a fresh process, as a user runs it):
reconstruction, then the edit to a target emotion (warp + mouth retrieval), writing the output video with audio.

    python benchmarks/edit.py [--emotion sad] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emotion", default="sad")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args()
    start = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    from ned_outlier.assets import asset_path
    from ned_outlier.pipeline import edit_video, load_edit_config
    from ned_outlier.reconstruction.reconstructor import reconstruct

    video = asset_path("pexels_video")
    imported = time.perf_counter()
    params = reconstruct(video, progress=False)
    reconstructed = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = edit_video(video, Path(tmp) / "edited.mp4", load_edit_config(), emotion=args.emotion,
                            params=params, progress=False)
    edited = time.perf_counter()
    total = edited - start
    print(f"Pexels clip, {report.frames} frames, edit to {args.emotion}, torch threads {args.threads}")
    print(f"  imports        {imported - start:6.1f} s")
    print(f"  reconstruction {reconstructed - imported:6.1f} s  ({report.frames / (reconstructed - imported):.1f} frames/s)")
    print(f"  edit + write   {edited - reconstructed:6.1f} s  ({report.frames / (edited - reconstructed):.1f} frames/s)")
    print(f"  end to end     {total:6.1f} s  ({report.frames / total:.1f} frames/s)")
    print(f"  peak RSS       {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:6.0f} MB")
    print(f"  mouths from donor frames: {report.mouth_from_donor}/{report.edited}")


if __name__ == "__main__":
    main()
