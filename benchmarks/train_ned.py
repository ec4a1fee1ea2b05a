#!/usr/bin/env python
"""NED manipulator training throughput: training sequences (10-frame windows) per second through NED's full
iteration (two discriminator steps, two generator steps), at NED's network sizes and batch 64, on the CPU and on a
GPU when one is available. Random codes of the mediapipe-au schema's width (20) and of FLAME's (51).

    python benchmarks/train_ned.py [--iterations 20] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.manipulator.ned.networks import NedNetworks  # noqa: E402
from ned_outlier.manipulator.ned.objective import LossWeights, Windows  # noqa: E402
from ned_outlier.manipulator.ned.trainer import NedObjective, OptimSection, iteration, make_optimizers  # noqa: E402


def sequences_per_second(device: str, code_dim: int, mouth_dims: int, batch: int, iterations: int) -> float:
    accelerator = Accelerator(cpu=device == "cpu")
    torch.manual_seed(0)
    nets = NedNetworks(code_dim, 7)
    objective = NedObjective(nets, mouth_dims, LossWeights())
    optimizers = make_optimizers(nets, OptimSection())
    objective, *prepared = accelerator.prepare(objective, *optimizers.values())
    optimizers = dict(zip(optimizers, prepared))

    def batch_of_windows() -> Windows:
        return Windows(torch.randn(batch, 10, code_dim, device=accelerator.device),
                       torch.randint(0, 7, (batch,), device=accelerator.device),
                       torch.rand(batch, device=accelerator.device))

    def run(count: int) -> None:
        for _ in range(count):
            z = torch.randn(batch, 4, device=accelerator.device)
            iteration(accelerator, objective, optimizers, batch_of_windows(), batch_of_windows(), z)
        if accelerator.device.type == "cuda":
            torch.cuda.synchronize()

    run(3)  # warm-up
    start = time.perf_counter()
    run(iterations)
    return batch * iterations / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for device in devices:
        name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
        for label, code_dim, mouth in (("mediapipe-au (20)", 20, 3), ("FLAME (51)", 51, 1)):
            rate = sequences_per_second(device, code_dim, mouth, args.batch_size, args.iterations)
            print(f"{name:<28} {label:<18} batch {args.batch_size}: {rate:8.1f} training sequences/s")


if __name__ == "__main__":
    main()
