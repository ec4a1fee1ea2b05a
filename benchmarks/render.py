#!/usr/bin/env python
"""Neural renderer inference throughput on the Pexels clip: frames per second of (1) conditioning (pytorch3d NMFC /
normal / eyes images), (2) the generator, and (3) the whole per-frame render as edit.py runs it (conditioning,
generator, un-crop and Laplacian blend into the 1280x720 frame), for each renderer config, on the CPU and on a GPU
when one is available. Weights are random (speed does not depend on them).

    python benchmarks/render.py [--configs configs/renderer/cpu.yaml,configs/renderer/actor.yaml] [--frames 48]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.assets import asset_path  # noqa: E402
from ned_outlier.io.video import VideoReader  # noqa: E402
from ned_outlier.reconstruction.reconstructor import reconstruct  # noqa: E402
from ned_outlier.renderer.neural.checkpoint import LoadedRenderer  # noqa: E402
from ned_outlier.renderer.neural.conditioning import CONDITION_CHANNELS  # noqa: E402
from ned_outlier.renderer.neural.data import crop_vertices, rescale_crop  # noqa: E402
from ned_outlier.renderer.neural.inference import NeuralFaceRenderer  # noqa: E402
from ned_outlier.renderer.neural.networks import RendererGenerator  # noqa: E402
from ned_outlier.renderer.neural.trainer import load_renderer_config  # noqa: E402


def timed(function, items) -> float:
    """Items per second of function over items, after one warm-up call."""
    function(items[0])
    start = time.perf_counter()
    for item in items:
        function(item)
    return len(items) / (time.perf_counter() - start)


def measure(config_path: Path, frames, params, indices, device: str) -> dict[str, float]:
    model = load_renderer_config(config_path).model
    torch.manual_seed(0)
    generator = RendererGenerator(CONDITION_CHANNELS, model.generator)
    renderer = NeuralFaceRenderer(LoadedRenderer(generator, model, params.schema, 256), device=device)
    size = model.conditioning.size
    vertices = [crop_vertices(params.landmarks[i].astype(np.float64),
                              rescale_crop(params.crop_matrix[i], 256, size)) for i in indices]
    synchronise = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def condition(v):
        renderer.conditions(torch.as_tensor(v, dtype=torch.float32, device=device)[None])
        synchronise()

    def generate(v):
        renderer.generate(v)
        synchronise()

    def render(i):
        renderer.render(frames[i], params.landmarks[indices[i]], params.crop_matrix[indices[i]])
        synchronise()

    with torch.no_grad():
        return {"conditioning": timed(condition, vertices), "conditioning + generator": timed(generate, vertices),
                "whole frame": timed(render, list(range(len(indices))))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="configs/renderer/tiny_cpu.yaml,configs/renderer/cpu.yaml,"
                                             "configs/renderer/actor.yaml")
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    video = asset_path("pexels_video")
    params = reconstruct(video, progress=False)
    indices = [int(i) for i in np.flatnonzero(params.face_found)[: args.frames]]
    frames = [frame for index, frame in enumerate(VideoReader(video)) if index in set(indices)]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch threads {torch.get_num_threads()}; "
          + (f"GPU: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"))
    print("| config | size | device | conditioning | conditioning + generator | whole frame (blend included) |")
    print("|---|---|---|---|---|---|")
    for config in args.configs.split(","):
        size = load_renderer_config(REPO / config).model.conditioning.size
        for device in devices:
            fps = measure(REPO / config, frames, params, indices, device)
            print(f"| {config} | {size} | {device} | {fps['conditioning']:.1f} | "
                  f"{fps['conditioning + generator']:.1f} | {fps['whole frame']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
