"""Exp-CLIP: a frozen CLIP with a bias-free linear head that maps its features into an LLM's embedding space.

    model = create_model("exp-clip-vit-b-32", pretrained="head.safetensors")          # CLIP weights 'openai'
    model = create_model("exp-clip-vit-b-32", clip_weights=None)                       # random CLIP (tests, offline)
    model.predict_proba(faces)                                                         # zero-shot, (N, 8)

Training aligns head(image features) with per-image LLM embeddings (recognition.losses.symmetric_info_nce);
zero-shot recognition projects the prompts' text features through the same head and compares by cosine, scaled by
CLIP's logit scale. `clip_weights` is an open_clip pretrained tag ('openai') or a local checkpoint file; nothing is
downloaded when HF_HUB_OFFLINE=1, and a missing one is a one-line UserError.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from ned_outlier.errors import UserError
from recognition.labels import EMOTIONS
from recognition.losses import symmetric_info_nce
from recognition.models.base import ImageClassifier
from recognition.registry import register_model

LLM_DIM = 4096
"""Width of the LLM target embeddings (the paper's instruction-tuned 7B LLM)."""
BACKBONES = {"exp-clip-vit-b-32": "ViT-B-32", "exp-clip-vit-b-16": "ViT-B-16", "exp-clip-vit-l-14": "ViT-L-14"}
PROMPTS_FILE = Path(__file__).with_name("exp_clip_prompts.yaml")
DEFAULT_PROMPT_SET = "ensemble-ten"


@cache
def prompt_sets() -> dict[str, dict[str, list[str]]]:
    """{set name: {canonical emotion: [prompt, ...]}} from exp_clip_prompts.yaml."""
    return yaml.safe_load(PROMPTS_FILE.read_text())


def load_clip(architecture: str, clip_weights: str | Path | None) -> tuple[nn.Module, object]:
    """open_clip model (frozen, eval) and its validation transform; UserError when the weights are unavailable."""
    if clip_weights is not None and Path(str(clip_weights)).suffix and not Path(clip_weights).is_file():
        raise UserError(f"CLIP weights not found at {clip_weights} (an open_clip {architecture} checkpoint)")
    try:
        clip, _, transform = open_clip.create_model_and_transforms(architecture, pretrained=clip_weights)
    except Exception as error:  # open_clip raises RuntimeError / hub errors of several kinds offline
        raise UserError(
            f"cannot load CLIP {architecture} weights {clip_weights!r} ({type(error).__name__}): no download happens "
            f"offline; pass clip_weights=PATH to a local open_clip checkpoint, or clip_weights=None for a random CLIP"
        ) from None
    clip.eval().requires_grad_(False)
    return clip, transform


class ExpCLIP(ImageClassifier, nn.Module):
    """image (N, 3, 224, 224) -> CLIP features (N, D) -> head (N, 4096) -> cosine to class prompts -> logits (N, C)."""

    def __init__(self, clip: nn.Module, transform, labels: tuple[str, ...], prompt_set: str):
        super().__init__()
        self.clip = clip
        self.transform = transform
        self.labels = labels
        self.prompts = [prompt_sets()[prompt_set][label] for label in labels]
        self.head = nn.Linear(clip.visual.output_dim, LLM_DIM, bias=False)
        self.frozen_prefixes = ("clip.",)  # checkpoints hold the head only: the user has the CLIP weights
        with torch.no_grad():  # the frozen text tower's features never change: encode the prompts once
            text = clip.encode_text(open_clip.tokenize([p for prompts in self.prompts for p in prompts]))
        self.register_buffer("prompt_features", text, persistent=False)  # (C * P, D)

    def project_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) preprocessed -> head(CLIP image features): (N, 4096), not normalised."""
        with torch.no_grad():
            features = self.clip.encode_image(images)
        return self.head(features)

    def train(self, mode: bool = True) -> "ExpCLIP":
        """Train mode for the head only: the frozen CLIP stays in eval mode."""
        super().train(mode)
        self.clip.eval()
        return self

    def training_loss(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE between head(CLIP(images)) (N, 4096) and the LLM targets (N, 4096), at CLIP's logit
        scale; a scalar."""
        return symmetric_info_nce(self.project_images(images), targets, self.clip.logit_scale.exp())

    def class_embeddings(self) -> torch.Tensor:
        """(C, P, 4096) L2-normalised head(text features) of each class's P prompts (classes share P per set)."""
        projected = F.normalize(self.head(self.prompt_features), dim=-1)
        return projected.view(len(self.labels), -1, LLM_DIM)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Zero-shot logits (N, C): logit_scale * cos per prompt, averaged over a class's prompts (the ensemble)."""
        image = F.normalize(self.project_images(images), dim=-1)
        per_prompt = torch.einsum("nd,cpd->ncp", image, self.class_embeddings())
        return self.clip.logit_scale.exp() * per_prompt.mean(dim=2)

    def preprocess(self, face: np.ndarray) -> torch.Tensor:
        """RGB uint8 face crop (H, W, 3) -> (3, S, S) with CLIP's resize, centre crop and normalisation."""
        if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {face.dtype} {face.shape}")
        return self.transform(Image.fromarray(face))


def build_exp_clip(name: str, pretrained: str | Path | None, clip_weights: str | Path | None, num_classes: int,
                   prompt_set: str) -> ExpCLIP:
    """Checks the arguments before the (slow) CLIP build, then loads the trained head from `pretrained` if given."""
    if num_classes not in (7, 8):
        raise UserError(f"num_classes must be 7 or 8, got {num_classes}")
    if prompt_set not in prompt_sets():
        raise UserError(f"unknown Exp-CLIP prompt set {prompt_set!r} (use one of {', '.join(prompt_sets())})")
    if pretrained is not None and not Path(pretrained).is_file():
        raise UserError(f"{name}: projection-head weights not found at {pretrained} (a .safetensors file with "
                        f"'weight' of shape ({LLM_DIM}, CLIP width), written by scripts/train_recognition.py)")
    clip, transform = load_clip(BACKBONES[name], clip_weights)
    model = ExpCLIP(clip, transform, EMOTIONS[:num_classes], prompt_set)
    if pretrained is not None:
        try:
            model.head.load_state_dict(load_file(pretrained))
        except (RuntimeError, OSError) as error:
            raise UserError(f"{name}: {pretrained} is not a projection head for {BACKBONES[name]}: "
                            f"{str(error).splitlines()[0]}") from None
    return model


def _register(name: str) -> None:
    @register_model(name)
    def factory(pretrained: str | Path | None = None, clip_weights: str | Path | None = "openai",
                num_classes: int = 7, prompt_set: str = DEFAULT_PROMPT_SET) -> ExpCLIP:
        return build_exp_clip(name, pretrained, clip_weights, num_classes, prompt_set)

    factory.__doc__ = f"Exp-CLIP on a frozen open_clip {BACKBONES[name]}, bias-free linear head to {LLM_DIM}-d."


for _name in BACKBONES:
    _register(_name)
