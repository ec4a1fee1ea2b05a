#!/usr/bin/env python
"""Train the per-actor neural renderer (NED's / Head2Head's) on the actor's own video, then score it on the held-out
end of that video.

    accelerate launch scripts/train_renderer.py --video actor.mp4 --config configs/renderer/actor.yaml   # GPU, 256 px
    python scripts/train_renderer.py --video actor.mp4 --config configs/renderer/cpu.yaml                 # CPU, 128 px
    python scripts/train_renderer.py --video actor.mp4 --config configs/renderer/tiny_cpu.yaml            # a minute

The video is reconstructed once (or pass --params from scripts/reconstruct.py) and its face crops are cut once.
The first data.train_fraction (default 0.8) of the frames train; the rest are held out. Writes into
train.output_dir: renderer.safetensors (use it with scripts/edit.py --renderer neural --checkpoint PATH),
checkpoints/last (run the same command again to resume), held_out.json (PSNR / SSIM of the held-out frames
re-rendered from their own meshes), held_out.png (real crops above generated ones) and TensorBoard logs
(tensorboard --logdir OUTPUT_DIR).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import add_training_arguments, run_cli, training_overrides  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", help="the actor's video (shorthand for --set data.video=PATH)")
    parser.add_argument("--params", help="its saved reconstruction, params.npz (default: reconstructed once)")
    add_training_arguments(parser, "configs/renderer/*.yaml", "--set train.epochs=2 --set data.train_fraction=0.9")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from ned_outlier.io.atomic import atomic_output
    from ned_outlier.io.image import write_image
    from ned_outlier.renderer.neural.checkpoint import load_renderer
    from ned_outlier.renderer.neural.evaluation import held_out_scores
    from ned_outlier.renderer.neural.data import split_frames
    from ned_outlier.renderer.neural.trainer import load_actor, load_renderer_config, run_topology, train_renderer

    overrides = training_overrides(args) + [f"data.video={args.video}"] * bool(args.video)
    config = load_renderer_config(args.config, overrides + [f"data.params={args.params}"] * bool(args.params))
    result = train_renderer(config, progress=not args.quiet)
    if not result.main_process:
        return
    print("generator checksum per process: " + " ".join(f"{c:.6f}" for c in result.checksum))
    for epoch, means in enumerate(result.history, start=1):
        print(f"epoch {epoch}: G {means['g']:.4f} (perceptual {means['g/perceptual']:.4f})  D {means['d']:.4f}")
    print(f"renderer: {result.model_path}")
    params, frames = load_actor(config, progress=False)
    _, held_out = split_frames(params.num_frames, config.data.train_fraction)
    if not len(held_out):
        return
    scores, strip = held_out_scores(load_renderer(result.model_path, params.schema), frames, held_out,
                                    progress=not args.quiet, topology=run_topology(config, params.schema.backend))
    output = Path(config.train.output_dir)
    with atomic_output(output / "held_out.json") as temp:
        temp.write_text(json.dumps(scores, indent=2) + "\n")
    if strip is not None:
        write_image(output / "held_out.png", strip)
    print(f"held-out frames {held_out.start}-{held_out.stop - 1} ({scores['frames']} with a face): "
          f"face PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f} "
          f"-> {output / 'held_out.json'}, {output / 'held_out.png'}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
