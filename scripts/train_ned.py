#!/usr/bin/env python
"""Train NED's manipulator (the sequence GAN over expression codes), with or without the CLIP outlier weights.

    python scripts/make_synthmead.py --out out/synthmead                      # data (or your MEAD)
    python scripts/score_outliers.py out/synthmead --out out/synthmead_lambda # lambda per window
    accelerate launch scripts/train_ned.py --config configs/ned/train_synthmead.yaml
    python scripts/train_ned.py --config configs/ned/tiny_cpu.yaml            # a minute on a CPU
    python scripts/train_ned.py --config configs/ned/train_mead.yaml --set data.lambdas=null   # plain NED

Clips are reconstructed once into data.cache. Writes into train.output_dir: model.safetensors (use it with
scripts/edit.py --manipulator ned --checkpoint PATH), checkpoints/last (run the same command again to resume) and
TensorBoard logs (losses, lambda statistics, translated sequences: tensorboard --logdir OUTPUT_DIR).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import add_training_arguments, run_cli, training_overrides  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, "configs/ned/*.yaml", "--set train.epochs=2 --set data.lambdas=null")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from ned_outlier.manipulator.ned.trainer import load_ned_config, train_ned

    result = train_ned(load_ned_config(args.config, training_overrides(args)), progress=not args.quiet)
    if result.main_process:
        print(f"model: {result.model_path}")
        for epoch, means in enumerate(result.history, start=1):
            extra = f"  val G cycle {means['val/g_latent/cycle']:.4f}" if "val/g_latent/cycle" in means else ""
            print(f"epoch {epoch}: D {means['d']:.4f}  G {means['g']:.4f}  mean lambda {means['lambda/mean']:.3f}"
                  f"{extra}")
        print("parameter checksum per process: " + " ".join(f"{c:.6f}" for c in result.checksum))


if __name__ == "__main__":
    sys.exit(run_cli(main))
