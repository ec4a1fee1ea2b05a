"""Trained-model checkpoints: one .safetensors file with the weights and, in its metadata, what rebuilds the model.

File format (written by `save_checkpoint`, read by `recognition.create_model(name, pretrained=path)`):
    tensors   the model's state dict, minus the entries under its `frozen_prefixes` (Exp-CLIP's frozen CLIP: the
              user has those weights already, and they are ~10x the trained head)
    metadata  "format":  CHECKPOINT_FORMAT
              "model":   registry name, e.g. "cnn-efficientnet-b0"
              "options": JSON of the factory's keyword arguments (num_classes, hidden, ...)
              "labels":  JSON list of the output order (canonical names, recognition.labels)
              "config":  JSON of the training config (for the record; not needed to load)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ned_outlier.errors import UserError
from ned_outlier.io import atomic_output

CHECKPOINT_FORMAT = "ned-outlier-recognition/1"


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict entries a checkpoint stores: all but those under `model.frozen_prefixes` (contiguous copies)."""
    frozen = tuple(getattr(model, "frozen_prefixes", ()))
    return {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()
            if not key.startswith(frozen)}


def save_checkpoint(model: nn.Module, path: str | Path, name: str, options: dict[str, Any],
                    config: dict[str, Any] | None = None) -> Path:
    """Write `model`'s trainable state and how to rebuild it to `path` atomically."""
    metadata = {"format": CHECKPOINT_FORMAT, "model": name, "options": json.dumps(options),
                "labels": json.dumps(list(model.labels)), "config": json.dumps(config or {}, default=str)}
    with atomic_output(path) as temp:
        save_file(trainable_state(model), str(temp), metadata=metadata)
    return Path(path)


def checkpoint_metadata(path: str | Path) -> dict[str, Any] | None:
    """The decoded metadata of a checkpoint written by `save_checkpoint`, or None for any other file."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError):
        return None
    if metadata.get("format") != CHECKPOINT_FORMAT:
        return None
    return {"model": metadata["model"], "options": json.loads(metadata["options"]),
            "labels": tuple(json.loads(metadata["labels"])), "config": json.loads(metadata.get("config", "{}"))}


def other_project_checkpoint(path: str | Path) -> str | None:
    """What `path` is when another trainer of this project wrote it ("a NED manipulator checkpoint (train_ned.py)",
    from its safetensors metadata), else None: such a file holds no classifier weights, and a model given it as
    `pretrained` would load none of them."""
    from ned_outlier.manipulator.ned.checkpoint import FORMAT as MANIPULATOR_FORMAT
    from ned_outlier.renderer.neural.checkpoint import FORMAT as RENDERER_FORMAT

    kinds = {MANIPULATOR_FORMAT: "a NED manipulator checkpoint (train_ned.py)",
             RENDERER_FORMAT: "a neural renderer checkpoint (train_renderer.py)"}
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            return kinds.get((handle.metadata() or {}).get("format"))
    except (SafetensorError, OSError):
        return None


def load_trained_state(model: nn.Module, path: str | Path, labels: tuple[str, ...]) -> nn.Module:
    """Load a checkpoint's tensors into `model` (built from its metadata); UserError when they do not fit."""
    if tuple(model.labels) != labels:
        raise UserError(f"{path}: trained for labels {list(labels)} but the model has {list(model.labels)}")
    try:
        missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    except (RuntimeError, SafetensorError) as error:
        raise UserError(f"{path} does not fit the model: {str(error).splitlines()[-1].strip()}") from None
    frozen = tuple(getattr(model, "frozen_prefixes", ()))
    missing = [key for key in missing if not key.startswith(frozen)]
    if missing or unexpected:
        raise UserError(f"{path} does not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model
