#!/usr/bin/env python
"""Inference throughput of every registered recognition model on CPU, at batch 1 and batch 64 (forward + softmax on
preprocessed tensors; preprocessing excluded), median of several timed runs after a warm-up.

    python benchmarks/recognition.py [--threads 2] [--models 'cnn-*']
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def images_per_second(model, batch, runs: int) -> float:
    model.predict_proba(batch)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.predict_proba(batch)
        times.append(time.perf_counter() - start)
    return len(batch) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="*", help="fnmatch pattern over registered names (default: all)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import numpy as np
    import torch

    from recognition import create_model, list_models

    torch.set_num_threads(args.threads)
    face = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    print(f"{'model':24s} {'input':>9s} {'batch 1 img/s':>14s} {'batch 64 img/s':>15s}")
    for name in list_models(args.models):
        # Exp-CLIP's CLIP weights cannot be had offline; a random CLIP of the same architecture times the same
        model = create_model(name, clip_weights=None) if name.startswith("exp-clip") else create_model(name)
        one = model.preprocess(face)[None]
        many = one.repeat(64, 1, 1, 1)
        print(f"{name:24s} {'x'.join(map(str, one.shape[1:])):>9s} {images_per_second(model, one, args.runs):14.1f} "
              f"{images_per_second(model, many, max(2, args.runs // 2)):15.1f}")


if __name__ == "__main__":
    main()
