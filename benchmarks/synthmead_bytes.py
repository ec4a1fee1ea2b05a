#!/usr/bin/env python
"""How far two SynthMEAD folders made from the same configs differ: on another CPU (or with another instruction set,
e.g. `DNNL_MAX_CPU_ISA=AVX2`) the same configs make other clip bytes. Prints how many clips are byte-identical, and
for the others the mean |difference| of their decoded frames (grey levels, over every pixel and channel; median,
95th percentile and largest over the clips) and the largest single pixel difference.

    OMP_NUM_THREADS=1 DNNL_MAX_CPU_ISA=AVX2 python scripts/make_synthmead.py --out out/synthmead_avx2 --quiet
    python benchmarks/synthmead_bytes.py out/synthmead out/synthmead_avx2
"""

from __future__ import annotations

import argparse
import filecmp
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.cli import run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402
from ned_outlier.io.video import VideoReader  # noqa: E402


def clip_difference(a: Path, b: Path) -> tuple[float, int]:
    """Mean and largest |a - b| over two clips' decoded (T, H, W, 3) frames, frame by frame."""
    total, count, largest = 0.0, 0, 0
    for frame_a, frame_b in zip(VideoReader(a), VideoReader(b), strict=True):
        difference = np.abs(frame_a.astype(np.int16) - frame_b.astype(np.int16))
        total += float(difference.sum())
        count += difference.size
        largest = max(largest, int(difference.max()))
    return total / count, largest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="a SynthMEAD folder (scripts/make_synthmead.py --out)")
    parser.add_argument("second", type=Path, help="another, made from the same configs")
    args = parser.parse_args(argv)
    clips = sorted(path.relative_to(args.first) for path in args.first.rglob("*.mp4"))
    missing = [clip for clip in clips if not (args.second / clip).is_file()]
    if not clips or missing:
        raise UserError(f"{args.second} lacks {len(missing)} of the {len(clips)} clips of {args.first}"
                        if clips else f"no clips in {args.first}")
    means, largest = [], []
    for clip in tqdm(clips, desc="clips"):
        if not filecmp.cmp(args.first / clip, args.second / clip, shallow=False):
            mean, peak = clip_difference(args.first / clip, args.second / clip)
            means.append(mean)
            largest.append(peak)
    print(f"{len(clips)} clips, {len(clips) - len(means)} byte-identical")
    if means:
        print(f"the {len(means)} others: mean |difference| of their frames {np.median(means):.3f} grey levels "
              f"(median clip), {np.percentile(means, 95):.3f} (95th percentile), {max(means):.3f} (largest); "
              f"largest single pixel difference {max(largest)} (median clip {np.median(largest):.0f})")


if __name__ == "__main__":
    sys.exit(run_cli(main))
