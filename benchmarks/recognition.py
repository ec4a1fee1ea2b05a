#!/usr/bin/env python
"""Inference throughput of every registered recognition model on CPU, at batch 1 and batch 64 (forward + softmax on
preprocessed tensors; preprocessing excluded), median of several timed runs after a warm-up.

    python benchmarks/recognition.py [--threads 2] [--models 'cnn-*'] [--runs 5]
    python benchmarks/recognition.py --models 'clip-*' --clip-weights /models/vit_b_32.bin   # your CLIP weights

Weights do not change the speed, so every model is timed with what can be had offline: fer2013-minixception with
its packaged weights, the CNN, RMFER and caption-CLIP families from random initialisation, and the CLIP-based
families (exp-clip-*, clip-zero-shot) with a random CLIP of the same architecture unless --clip-weights names an
open_clip tag or local checkpoint. The `weights` column says which. A model that still cannot be built (it needs a
file that is not there) is skipped with a one-line note saying why.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CLIP_FAMILIES = ("exp-clip-", "clip-zero-shot")  # factories taking clip_weights (None: a random CLIP)


def images_per_second(model, batch, runs: int) -> float:
    model.predict_proba(batch)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.predict_proba(batch)
        times.append(time.perf_counter() - start)
    return len(batch) / statistics.median(times)


def build(name: str, clip_weights: str | None):
    """(model, what its weights are) for `name`, built offline unless clip_weights names real CLIP weights."""
    from recognition import create_model

    if name.startswith(CLIP_FAMILIES):
        label = "your CLIP" if clip_weights else "random CLIP"
        return create_model(name, clip_weights=clip_weights), label
    return create_model(name), "packaged" if name.startswith("fer2013") else "random init"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="*", help="fnmatch pattern over registered names (default: all)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clip-weights", default=None,
                        help="open_clip pretrained tag or local checkpoint for the CLIP-based models "
                             "(default: a random CLIP of the same architecture, which times the same)")
    args = parser.parse_args()
    import numpy as np
    import torch

    from ned_outlier.errors import UserError
    from recognition import list_models

    torch.set_num_threads(args.threads)
    face = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    names = list_models(args.models)
    if not names:
        sys.exit(f"no registered model matches {args.models!r} (available: {', '.join(list_models())})")
    print(f"{'model':24s} {'weights':>12s} {'input':>9s} {'batch 1 img/s':>14s} {'batch 64 img/s':>15s}")
    for name in names:
        try:
            model, weights = build(name, args.clip_weights)
        except UserError as error:
            print(f"{name:24s} skipped: {str(error).splitlines()[0]}")
            continue
        one = model.preprocess(face)[None]
        many = one.repeat(64, 1, 1, 1)
        print(f"{name:24s} {weights:>12s} {'x'.join(map(str, one.shape[1:])):>9s} "
              f"{images_per_second(model, one, args.runs):14.1f} "
              f"{images_per_second(model, many, max(2, args.runs // 2)):15.1f}", flush=True)


if __name__ == "__main__":
    main()
