"""Exp-CLIP's training targets: one LLM embedding per training image, in a safetensors file.

File format (written by `write_llm_targets`, read by `read_llm_targets`):
    tensor  "embeddings": float32 (N, 4096), row i is the LLM's embedding of its description of image i
    metadata "images":     JSON list of N image paths, as the training list names them (row order)
             "llm":        the model that produced them (free text, e.g. a local checkpoint name)
             "instruction": the prompt given with each image (INSTRUCTION below, unless the user changed it)

The embeddings come from an instruction-tuned multimodal LLM the user runs on their own hardware; no LLM is
downloaded here. Tests use random targets.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ned_outlier.errors import UserError
from ned_outlier.io import atomic_output

INSTRUCTION = ("Please play the role of a facial action describer. Objectively describe the detailed facial actions "
               "of the person in the image.")
"""The paper's instruction to the LLM."""
TARGET_DIM = 4096


def write_llm_targets(path: str | Path, images: list[str], embeddings: torch.Tensor, llm: str,
                      instruction: str = INSTRUCTION) -> None:
    """Write the (N, 4096) `embeddings` of the N `images` to `path` atomically."""
    if embeddings.ndim != 2 or embeddings.shape != (len(images), TARGET_DIM):
        raise ValueError(f"expected embeddings of shape ({len(images)}, {TARGET_DIM}), got {tuple(embeddings.shape)}")
    metadata = {"images": json.dumps(list(images)), "llm": llm, "instruction": instruction}
    with atomic_output(path) as temp:
        save_file({"embeddings": embeddings.float().contiguous()}, str(temp), metadata=metadata)


def read_llm_targets(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """(image paths, embeddings (N, 4096) float32) from a targets file; UserError when missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"LLM targets file not found: {path} (see recognition/data/llm_targets.py for its format)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        embeddings = load_file(str(path))["embeddings"]
        images = json.loads(metadata["images"])
    except (SafetensorError, KeyError, ValueError, OSError) as error:
        raise UserError(f"{path} is not an LLM targets file ({type(error).__name__}: {error})") from None
    if embeddings.ndim != 2 or embeddings.shape != (len(images), TARGET_DIM):
        raise UserError(f"{path}: {len(images)} images but embeddings of shape {tuple(embeddings.shape)}, "
                        f"expected ({len(images)}, {TARGET_DIM})")
    return images, embeddings
