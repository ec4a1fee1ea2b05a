"""CNN baselines: an ImageNet backbone (timm) followed by two dense layers.

    model = create_model("cnn-efficientnet-b0", num_classes=7, hidden=512)                 # random init (offline)
    model = create_model("cnn-efficientnet-b0", pretrained="efficientnet_b0.safetensors")  # user's ImageNet weights

`pretrained` is a local file of the timm backbone's ImageNet weights (the names timm uses: mobilenetv2_100,
efficientnet_b0, efficientnet_b2); no weights are downloaded. Head: Linear(features, hidden) -> ReLU -> Dropout ->
Linear(hidden, C).
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import cv2
import numpy as np
import timm
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn

from ned_outlier.cli import logger_level
from ned_outlier.errors import UserError
from recognition.labels import EMOTIONS
from recognition.models.base import ImageClassifier
from recognition.registry import register_model

# registry name -> (timm backbone, input size in pixels: EfficientNet-B2 at its native 260 as in RMFER)
BACKBONES = {
    "cnn-mobilenetv2": ("mobilenetv2_100", 224),
    "cnn-efficientnet-b0": ("efficientnet_b0", 224),
    "cnn-efficientnet-b2": ("efficientnet_b2", 260),
}


def emotion_labels(num_classes: int) -> tuple[str, ...]:
    """7 classes: the basic emotions (no contempt); 8: with contempt (AffectNet-8, Exp-CLIP)."""
    if num_classes not in (7, 8):
        raise UserError(f"num_classes must be 7 or 8, got {num_classes}")
    return EMOTIONS[:num_classes]


class CNNClassifier(ImageClassifier, nn.Module):
    """backbone (N, 3, S, S) -> pooled features (N, F) -> head -> logits (N, C)."""

    def __init__(self, backbone: nn.Module, input_size: int, labels: tuple[str, ...], head: nn.Module):
        super().__init__()
        self.labels = labels
        self.input_size = input_size
        self.backbone = backbone
        self.head = head
        config = backbone.pretrained_cfg
        self.register_buffer("mean", torch.tensor(config["mean"]).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config["std"]).view(3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the logits of `images` (N, 3, S, S) against class indices `labels` (N,); a scalar."""
        return F.cross_entropy(self(images), labels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> (N, F) pooled backbone features."""
        return self.backbone(x)

    def preprocess(self, face: np.ndarray) -> torch.Tensor:
        """RGB uint8 face crop (H, W, 3) -> (3, S, S) float32, resized (area) and ImageNet-normalised."""
        if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {face.dtype} {face.shape}")
        resized = cv2.resize(face, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA)
        tensor = torch.from_numpy(resized).permute(2, 0, 1).float() / 255.0
        return (tensor - self.mean.cpu()) / self.std.cpu()


def experiment_input_size(name: str, input_size: int | None, native_size: int) -> int:
    """The input side of model `name`: `native_size` (the paper's) when input_size is None, else input_size, meant
    only for cheaper experiments (the backbones pool globally, so any side >= 32 runs); UserError below 32."""
    input_size = input_size or native_size
    if input_size < 32:
        raise UserError(f"{name}: input_size must be at least 32 pixels, got {input_size}")
    return input_size


def read_backbone_weights(name: str, path: Path, what: str) -> dict[str, torch.Tensor]:
    """The state dict in the weights file `path` as timm reads it (safetensors, or torch.load(weights_only=True)
    unwrapping {"state_dict": ...} and the like); UserError naming `what` it should be when it cannot be read."""
    try:
        state = timm.models.load_state_dict(str(path))
    except (SafetensorError, pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        cause = error if isinstance(error, pickle.UnpicklingError) else error.__cause__
        if isinstance(cause, pickle.UnpicklingError):  # torch.load(weights_only=True) refused it
            if "GLOBAL" in str(cause):  # "Trying to load unsupported GLOBAL posix.system"
                raise UserError(f"{name}: {path} holds pickled objects other than tensors, not loaded (a pickle "
                                f"can run code; {what})") from None
            raise UserError(f"{name}: cannot read backbone weights {path}: not a weights file ({what})") from None
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        raise UserError(f"{name}: cannot read backbone weights {path} ({what}): {reason}") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise UserError(f"{name}: {path} holds no state dict of tensors ({what})")
    return state


def build_backbone(name: str, backbone_name: str, pretrained: str | Path | None, **timm_options) -> nn.Module:
    """timm `backbone_name` without classifier (pooled features), ImageNet weights from the local file `pretrained`;
    `timm_options` go to timm.create_model (e.g. a ViT's img_size).

    timm loads a backbone's weights leniently (without its classifier, keys it does not know are skipped), so a
    file of another model would leave the backbone random without a word: a file that lacks any of the backbone's
    weights, or whose tensors do not fit, is a UserError, and so is one that cannot be read (a .pth is read with
    torch.load(weights_only=True), so a pickle that would run code is refused)."""
    if pretrained is None:
        return timm.create_model(backbone_name, num_classes=0, **timm_options)
    path = Path(pretrained)
    what = f"a timm {backbone_name} ImageNet checkpoint, .safetensors or .pth"
    if not path.is_file():
        raise UserError(f"{name}: backbone weights not found at {path} ({what}; none is downloaded)")
    with logger_level("timm", logging.ERROR):  # timm's lists of the keys it skipped: said below in one line
        state = read_backbone_weights(name, path, what)
        try:
            backbone = timm.create_model(backbone_name, num_classes=0, pretrained=True,
                                         pretrained_cfg_overlay={"state_dict": state}, **timm_options)
        except (RuntimeError, KeyError, ValueError) as error:  # a tensor of another shape
            raise UserError(f"{name}: {path} does not fit timm's {backbone_name}: "
                            f"{str(error).strip().splitlines()[-1].strip()}") from None
    backbone.pretrained_cfg.pop("state_dict", None)  # not a second copy of the weights for the model's lifetime
    expected = [key for key in backbone.state_dict() if not key.endswith("num_batches_tracked")]
    missing = [key for key in expected if key not in state]
    if missing:
        raise UserError(f"{name}: {path} is not {what}: {len(missing)} of the backbone's {len(expected)} weights are "
                        f"not in it (e.g. {', '.join(missing[:3])})")
    return backbone


def build_cnn(name: str, pretrained: str | Path | None, num_classes: int, hidden: int, dropout: float,
              input_size: int | None = None) -> CNNClassifier:
    """`input_size` None: the backbone's native size (BACKBONES); see experiment_input_size."""
    backbone_name, native_size = BACKBONES[name]
    input_size = experiment_input_size(name, input_size, native_size)
    backbone = build_backbone(name, backbone_name, pretrained)
    labels = emotion_labels(num_classes)
    head = nn.Sequential(nn.Linear(backbone.num_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, len(labels)))
    return CNNClassifier(backbone, input_size, labels, head)


def _register(name: str) -> None:
    @register_model(name)
    def factory(pretrained: str | Path | None = None, num_classes: int = 7, hidden: int = 512,
                dropout: float = 0.3, input_size: int | None = None) -> CNNClassifier:
        return build_cnn(name, pretrained, num_classes, hidden, dropout, input_size)

    factory.__doc__ = f"{BACKBONES[name][0]} backbone + two dense layers, {BACKBONES[name][1]} px input."


for _name in BACKBONES:
    _register(_name)
