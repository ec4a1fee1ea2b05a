"""Plain CLIP zero-shot emotion recognition: the outlier scorer of the project's NED training (open_clip).

    model = create_model("clip-zero-shot")                                  # ViT-B-32, 'openai' weights (yours)
    model = create_model("clip-zero-shot", architecture="ViT-B-16", clip_weights="/models/vit_b_16.bin")
    model.predict_proba(faces)                                              # (N, 7) over the emotion prompts

Each class is described by `templates` with {} replaced by the class's word (`words`: canonical emotion -> word);
a class's text feature is the normalised mean of its templates' normalised features (CLIP's prompt ensembling), and
the logits are CLIP's logit scale times the cosine. Offline the weights must be the user's local file (or the
pretrained tag in open_clip's cache); a missing one is a one-line UserError naming the option.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ned_outlier.errors import UserError
from recognition.labels import EMOTIONS
from recognition.models.base import ImageClassifier
from recognition.models.exp_clip import load_clip
from recognition.registry import register_model

DEFAULT_TEMPLATES = ("a photo of a {} face.", "a photo of a person with a {} expression.",
                     "a close-up photo of a {} looking face.")
DEFAULT_WORDS = {"neutral": "neutral", "happy": "happy", "sad": "sad", "surprised": "surprised", "fear": "fearful",
                 "disgusted": "disgusted", "angry": "angry", "contempt": "contemptuous"}


class ClipZeroShot(ImageClassifier, nn.Module):
    """image (N, 3, S, S) -> CLIP image features -> logit_scale * cosine to each class's text feature (N, C)."""

    def __init__(self, clip: nn.Module, transform, labels: tuple[str, ...], templates: tuple[str, ...],
                 words: dict[str, str]):
        super().__init__()
        self.clip, self.transform, self.labels = clip, transform, labels
        prompts = [template.format(words[label]) for label in labels for template in templates]
        with torch.no_grad():
            text = F.normalize(clip.encode_text(open_clip.tokenize(prompts)), dim=-1)
            text = F.normalize(text.view(len(labels), len(templates), -1).mean(dim=1), dim=-1)
        self.register_buffer("class_features", text, persistent=False)  # (C, D)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        image = F.normalize(self.clip.encode_image(images), dim=-1)
        return self.clip.logit_scale.exp() * image @ self.class_features.T

    def preprocess(self, face: np.ndarray) -> torch.Tensor:
        """RGB uint8 face crop (H, W, 3) -> (3, S, S) with CLIP's resize, centre crop and normalisation."""
        return self.transform(Image.fromarray(face))


def check_prompts(num_classes: int, templates, words: dict | None) -> tuple[tuple[str, ...], tuple[str, ...], dict]:
    """(labels, templates, words) checked before CLIP is built; a one-line UserError for num_classes other than 7 or 8,
    no templates or one without exactly one {}, a word for an unknown emotion, an empty word, or two classes sharing
    a word (their prompts, hence their probabilities, would be the same)."""
    if num_classes not in (7, 8):
        raise UserError(f"clip-zero-shot: num_classes must be 7 or 8, got {num_classes}")
    labels = EMOTIONS[:num_classes]
    if isinstance(templates, str) or not templates or not all(isinstance(t, str) for t in templates):
        raise UserError(f"clip-zero-shot: templates must be a list of prompts with {{}} for the word, got {templates!r}")
    for template in templates:
        if template.count("{}") != 1 or set("{}") & set(template.replace("{}", "", 1)):
            raise UserError(f"clip-zero-shot: template {template!r} must hold {{}} (the class's word) exactly once")
    unknown = sorted(set(words or {}) - set(EMOTIONS))
    if unknown:
        raise UserError(f"clip-zero-shot: words for unknown emotion {unknown[0]!r} (emotions: {', '.join(EMOTIONS)})")
    words = {**DEFAULT_WORDS, **(words or {})}
    for label in labels:
        if not isinstance(words[label], str) or not words[label].strip():
            raise UserError(f"clip-zero-shot: the word for {label} must be a non-empty string, got {words[label]!r}")
    shared = [label for label in labels if [words[other] for other in labels].count(words[label]) > 1]
    if shared:
        raise UserError(f"clip-zero-shot: {' and '.join(shared)} share the word {words[shared[0]]!r}")
    return labels, tuple(templates), words


@register_model("clip-zero-shot")
def clip_zero_shot(pretrained: str | Path | None = None, architecture: str = "ViT-B-32",
                   clip_weights: str | Path | None = "openai", num_classes: int = 7,
                   templates: tuple[str, ...] = DEFAULT_TEMPLATES, words: dict | None = None) -> ClipZeroShot:
    """CLIP zero-shot over the first `num_classes` emotions. `pretrained`, when given, is the CLIP weights (a tag or
    a local open_clip checkpoint) and wins over `clip_weights`; clip_weights=None builds a random CLIP (tests)."""
    labels, templates, words = check_prompts(num_classes, templates, words)
    clip, transform = load_clip(architecture, pretrained if pretrained is not None else clip_weights)
    return ClipZeroShot(clip, transform, labels, templates, words)
