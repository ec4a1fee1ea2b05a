"""Exp-CLIP's training targets: one LLM embedding per training image, in a safetensors file.

File format (written by `write_llm_targets`, read by `read_llm_targets` and `read_llm_targets_info`):
    tensor  "embeddings": float32 (N, 4096), row i is the target of image i
    metadata "images":     JSON list of N image paths, as the training list names them (row order)
             "llm":        the model that produced them (free text, e.g. a local checkpoint name)
             "instruction": the prompt given with each image (INSTRUCTION below, unless the user changed it)
             "recipe":     how a row was made from the LLM, one of RECIPES (absent in files written before it was
                           recorded)

The two recipes:
    encoder-states  Exp-CLIP's (the released code, zengqunzhao/Exp-CLIP models/BLIP2_T5.py and Exp_CLIP.py): the
                    image goes through BLIP-2's ViT and Q-Former, whose 32 query outputs, projected to the LLM's
                    width, are put before the instruction's tokens (T5 tokenizer, closing </s> included); the
                    instruction-tuned LLM's *encoder* (Flan-T5-XXL, width 4096) reads that sequence once, and its
                    final hidden states (after the encoder's last layer norm) are averaged over all 32 + L
                    positions. No answer is generated or used. `blip2_encoder_embedder` computes it from a local
                    BLIP-2 Flan-T5 folder.
    answer          the LLM answers the instruction about the image and an embedding of that answer is the
                    target (e.g. its last hidden states averaged over the answer's tokens): a recipe of your own,
                    not the released method's.

Embedders (Embedder below) get the images as RGB PIL images and the instruction, and return the (n, 4096) rows.
The LLM runs on the user's own hardware from their own copy; nothing is downloaded here. Tests use stand-ins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ned_outlier.errors import UserError
from ned_outlier.io import atomic_output

INSTRUCTION = ("Please play the role of a facial action describer. Objectively describe the detailed facial actions "
               "of the person in the image.")
"""The paper's instruction to the LLM."""
TARGET_DIM = 4096
"""Exp-CLIP's target width: Flan-T5-XXL's hidden size, which its linear head (512 or 768 -> 4096) maps onto."""
ENCODER_STATES = "encoder-states"
ANSWER = "answer"
RECIPES = {
    ENCODER_STATES: "the mean of the LLM encoder's hidden states over the image query tokens and the instruction "
                    "tokens (Exp-CLIP's released method)",
    ANSWER: "an embedding of the LLM's answer to the instruction (your own recipe, not the released method)",
}
Embedder = Callable[[list[Image.Image], str], np.ndarray]
"""embedder(images: n RGB PIL images, instruction) -> (n, 4096) array: one target row per image."""


def write_llm_targets(path: str | Path, images: list[str], embeddings: torch.Tensor, llm: str,
                      instruction: str = INSTRUCTION, recipe: str | None = None) -> None:
    """Write the (N, 4096) `embeddings` of the N `images` to `path` atomically; `recipe` (one of RECIPES) is
    recorded when given."""
    if embeddings.ndim != 2 or embeddings.shape != (len(images), TARGET_DIM):
        raise ValueError(f"expected embeddings of shape ({len(images)}, {TARGET_DIM}), got {tuple(embeddings.shape)}")
    if recipe is not None and recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    metadata = {"images": json.dumps(list(images)), "llm": llm, "instruction": instruction}
    if recipe is not None:
        metadata["recipe"] = recipe
    with atomic_output(path) as temp:
        save_file({"embeddings": embeddings.float().contiguous()}, str(temp), metadata=metadata)


@dataclass(frozen=True)
class LLMTargetsInfo:
    """What a targets file says about its rows: the LLM, the instruction and the recipe (None: not recorded)."""

    llm: str
    instruction: str
    recipe: str | None


def _metadata(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise UserError(f"LLM targets file not found: {path} (see recognition/data/llm_targets.py for its format)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise UserError(f"{path} is not an LLM targets file ({type(error).__name__}: {error})") from None


def read_llm_targets_info(path: str | Path) -> LLMTargetsInfo:
    """The llm, instruction and recipe recorded in a targets file; UserError when missing or not one."""
    metadata = _metadata(Path(path))
    return LLMTargetsInfo(metadata.get("llm", ""), metadata.get("instruction", ""), metadata.get("recipe"))


def read_llm_targets(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """(image paths, embeddings (N, 4096) float32) from a targets file; UserError when missing or malformed."""
    path = Path(path)
    metadata = _metadata(path)
    try:
        embeddings = load_file(str(path))["embeddings"]
        images = json.loads(metadata["images"])
    except (SafetensorError, KeyError, ValueError, OSError) as error:
        raise UserError(f"{path} is not an LLM targets file ({type(error).__name__}: {error})") from None
    if embeddings.ndim != 2 or embeddings.shape != (len(images), TARGET_DIM):
        raise UserError(f"{path}: {len(images)} images but embeddings of shape {tuple(embeddings.shape)}, "
                        f"expected ({len(images)}, {TARGET_DIM})")
    return images, embeddings


BLIP2_FILES = {"config.json": "the model's config", "preprocessor_config.json": "the image processor's config",
               "tokenizer_config.json": "the tokenizer's config"}
"""What a local BLIP-2 folder (a download of e.g. Salesforce/blip2-flan-t5-xxl) must hold, besides its weights."""


def check_blip2_folder(folder: Path) -> None:
    """UserError naming what is missing from a BLIP-2 folder: the folder, a file of BLIP2_FILES, or the weights."""
    where = (f"put a copy of BLIP-2 Flan-T5 (e.g. Salesforce/blip2-flan-t5-xxl: config, weights, processor and "
             f"tokenizer files) in {folder}")
    if not folder.is_dir():
        raise UserError(f"BLIP-2 folder not found: {folder} ({where})")
    missing = [f"{name} ({what})" for name, what in BLIP2_FILES.items() if not (folder / name).is_file()]
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("pytorch_model*.bin")):
        missing.append("the weights (*.safetensors or pytorch_model*.bin)")
    if missing:
        raise UserError(f"{folder} lacks {', '.join(missing)}: {where}")


@dataclass(frozen=True)
class Blip2EncoderStates:
    """Exp-CLIP's ENCODER_STATES recipe as an Embedder over a loaded transformers BLIP-2 Flan-T5 (see
    encoder_state_means): embedder(images, instruction) -> (n, D)."""

    model: object
    image_processor: object
    tokenizer: object

    def __call__(self, images: list[Image.Image], instruction: str) -> np.ndarray:
        return encoder_state_means(self.model, self.image_processor, self.tokenizer, images, instruction)


def blip2_encoder_embedder(folder: str | Path, device: str = "cpu", dtype: str = "float32") -> Blip2EncoderStates:
    """Exp-CLIP's ENCODER_STATES recipe from a local BLIP-2 Flan-T5 folder (transformers' format), as an Embedder.

    Loads offline only (local_files_only); UserError for a missing or incomplete folder, or for a BLIP-2 whose LLM
    has no encoder (the OPT ones). dtype: "float32", "bfloat16" (the released code runs the LLM in bfloat16 autocast)
    or "float16". Images go through the folder's own image processor (224 px, CLIP normalisation); the released
    training script fed its 224 px tensors without that normalisation.
    """
    model, image_processor, tokenizer = _load_blip2(Path(folder), dtype)
    return Blip2EncoderStates(model.to(device).eval(), image_processor, tokenizer)


def _load_blip2(folder: Path, dtype: str):
    """(Blip2ForConditionalGeneration, image processor, tokenizer) from `folder`, offline; UserError as above."""
    check_blip2_folder(folder)
    from transformers import AutoImageProcessor, AutoTokenizer, Blip2Config, Blip2ForConditionalGeneration

    load = {"local_files_only": True}
    try:
        decoder_only = Blip2Config.from_pretrained(folder, **load).use_decoder_only_language_model
        if not decoder_only:
            return (Blip2ForConditionalGeneration.from_pretrained(folder, dtype=dtype, **load),
                    AutoImageProcessor.from_pretrained(folder, **load), AutoTokenizer.from_pretrained(folder, **load))
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot load BLIP-2 from {folder}: {str(error).splitlines()[0]}") from None
    raise UserError(f"{folder} is a BLIP-2 with a decoder-only LLM; the encoder-states recipe needs a Flan-T5 one "
                    "(e.g. Salesforce/blip2-flan-t5-xxl)")


@torch.no_grad()
def encoder_state_means(model, image_processor, tokenizer, images: list[Image.Image], instruction: str) -> np.ndarray:
    """(n, D) float32: per image, the LLM encoder's final hidden states averaged over [Q query outputs; L tokens].

    model: transformers' Blip2ForConditionalGeneration with a T5 LLM of width D; the Q-Former's Q query outputs
    (n, Q, D) after the language projection, then the instruction's L token embeddings (with T5's closing </s>),
    read by the T5 encoder without padding (one instruction for the whole batch).
    """
    pixels = image_processor(images=images, return_tensors="pt").pixel_values.to(model.device, model.dtype)
    queries = model.get_image_features(pixel_values=pixels).pooler_output  # (n, Q, D)
    tokens = tokenizer(instruction, return_tensors="pt").input_ids.to(model.device)  # (1, L)
    words = model.language_model.get_input_embeddings()(tokens).expand(len(images), -1, -1)  # (n, L, D)
    sequence = torch.cat([queries, words.to(queries.dtype)], dim=1)
    states = model.language_model.get_encoder()(inputs_embeds=sequence).last_hidden_state  # (n, Q + L, D)
    return states.mean(dim=1).float().cpu().numpy()
