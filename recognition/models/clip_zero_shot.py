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


@register_model("clip-zero-shot")
def clip_zero_shot(pretrained: str | Path | None = None, architecture: str = "ViT-B-32",
                   clip_weights: str | Path | None = "openai", num_classes: int = 7,
                   templates: tuple[str, ...] = DEFAULT_TEMPLATES, words: dict | None = None) -> ClipZeroShot:
    """CLIP zero-shot over the first `num_classes` emotions. `pretrained`, when given, is the CLIP weights (a tag or
    a local open_clip checkpoint) and wins over `clip_weights`; clip_weights=None builds a random CLIP (tests)."""
    clip, transform = load_clip(architecture, pretrained if pretrained is not None else clip_weights)
    return ClipZeroShot(clip, transform, EMOTIONS[:num_classes], tuple(templates), {**DEFAULT_WORDS, **(words or {})})
