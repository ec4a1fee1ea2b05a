#!/usr/bin/env python
"""Train an emotion classifier of the recognition package from its config.

    accelerate launch scripts/train_recognition.py --config configs/recognition/cnn-efficientnet-b0.yaml
    python scripts/train_recognition.py --config configs/recognition/rmfer-efficientnet-b2.yaml \\
        --set train.epochs=2 --set data.train.root=out/emotion_set/train

Writes into train.output_dir: model.safetensors (load with recognition.create_model(name, pretrained=PATH) or
scripts/evaluate.py --pretrained PATH), checkpoints/last (run the same command again to resume from it) and
TensorBoard logs (tensorboard --logdir OUTPUT_DIR). On 2 CPU processes (DDP over gloo):
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 --num_machines 1 \\
        --mixed_precision no --dynamo_backend no scripts/train_recognition.py --config ...
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
    add_training_arguments(parser, "configs/recognition/<model>.yaml", "--set train.epochs=2 --set data.train.root=DIR")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from recognition.training.config import load_training_config
    from recognition.training.trainer import train

    result = train(load_training_config(args.config, training_overrides(args)))
    if not result.main_process:
        return
    losses = " ".join(f"{loss:.4f}" for loss in result.history)
    val = " ".join(f"{key} {value:.3f}" for key, value in result.val.items())
    checksums = " ".join(f"{value:.6f}" for value in result.checksum)
    print(f"model: {result.model_path}\nloss per epoch: {losses}\n{val}\nparameter checksum per process: {checksums}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
