"""DECA's coarse encoder (E_flame) and EMOCA's expression encoder, laid out so that their state dicts are those of
the released checkpoints, key for key.

    encoder = load_deca_encoder(path)          # ned_outlier.reconstruction.deca.checkpoint
    codes = encoder(images)                    # images (B, 3, 224, 224) RGB in [0, 1] -> DecaCodes

Both are a ResNet-50 trunk (`encoder.*`: conv1, bn1, layer1..layer4 of Bottleneck blocks, no fc) whose 7 x 7 x 2048
output is average-pooled to 2048 features, then a head `layers.*`: Linear(2048, 1024), ReLU, Linear(1024, n).
DECA's n = 236 is one vector cut, in this order, into shape 100, tex 50, exp 50, pose 6 (global rotation 3 then jaw
3, axis-angle), cam 3 (orthographic s, tx, ty) and light 27 (9 spherical-harmonics bands x RGB, as (9, 3)); DECA
adds nothing to it at test time. EMOCA keeps DECA's E_flame for everything but the expression, which its own
encoder (E_expression, the same layout with n = 50) replaces; the jaw stays DECA's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 224
FEATURES = 2048
HIDDEN = 1024
DECA_CODE_LAYOUT = (("shape", 100), ("tex", 50), ("exp", 50), ("pose", 6), ("cam", 3), ("light", 27))
DECA_CODE_SIZE = sum(n for _, n in DECA_CODE_LAYOUT)  # 236
EMOCA_EXPRESSION_SIZE = 50
LIGHT_BANDS = 9


@dataclass(frozen=True)
class DecaCodes:
    """FLAME codes of a batch of B images: shape (B, 100), tex (B, 50), exp (B, 50), pose (B, 6) global rotation
    then jaw (axis-angle), cam (B, 3) orthographic s, tx, ty, light (B, 9, 3) SH coefficients x RGB."""

    shape: torch.Tensor
    tex: torch.Tensor
    exp: torch.Tensor
    pose: torch.Tensor
    cam: torch.Tensor
    light: torch.Tensor


def split_deca_code(code: torch.Tensor) -> DecaCodes:
    """DECA's (B, 236) regressor output -> DecaCodes (views into `code`), in DECA's order."""
    if code.ndim != 2 or code.shape[1] != DECA_CODE_SIZE:
        raise ValueError(f"a DECA code is (B, {DECA_CODE_SIZE}), got {tuple(code.shape)}")
    parts = dict(zip([name for name, _ in DECA_CODE_LAYOUT], code.split([n for _, n in DECA_CODE_LAYOUT], dim=1)))
    parts["light"] = parts["light"].reshape(code.shape[0], LIGHT_BANDS, 3)
    return DecaCodes(**parts)


def _check_images(images: torch.Tensor) -> None:
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"DECA takes images (B, 3, {INPUT_SIZE}, {INPUT_SIZE}), got {tuple(images.shape)}")


class ResNet50Trunk(nn.Module):
    """DECA's ResNet-50 feature extractor: images (B, 3, 224, 224) -> (B, 2048).

    torchvision's Bottleneck blocks (stride on the 3 x 3 convolution, as in DECA's copy of the torchvision ResNet),
    assembled without torchvision's fc layer, which DECA's trunk does not have; the final 7 x 7 map is averaged as
    DECA's AvgPool2d(7) does. Weights are random until a checkpoint is loaded: nothing is downloaded.
    """

    BLOCKS = (3, 4, 6, 3)
    PLANES = (64, 128, 256, 512)

    def __init__(self) -> None:
        # here, not at the top: the default (mediapipe-au) path of every edit imports this module but never builds
        # the trunk, and torchvision's import was most of that edit's start-up (benchmarks/edit.py: imports 3.2-3.8 s
        # with it at the top, 1.4-1.8 s without)
        from torchvision.models.resnet import Bottleneck

        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for index, (planes, blocks) in enumerate(zip(self.PLANES, self.BLOCKS), start=1):
            stride = 1 if index == 1 else 2
            width = planes * Bottleneck.expansion
            downsample = nn.Sequential(nn.Conv2d(inplanes, width, kernel_size=1, stride=stride, bias=False),
                                       nn.BatchNorm2d(width))
            layer = [Bottleneck(inplanes, planes, stride, downsample)]
            layer += [Bottleneck(width, planes) for _ in range(1, blocks)]
            self.add_module(f"layer{index}", nn.Sequential(*layer))
            inplanes = width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images)
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.avg_pool2d(x, kernel_size=7, stride=1).flatten(1)


class ResnetRegressor(nn.Module):
    """DECA's ResnetEncoder layout: `encoder` (ResNet50Trunk) then `layers` Linear(2048, 1024), ReLU,
    Linear(1024, n_outputs); `regress(images)` -> (B, n_outputs)."""

    def __init__(self, n_outputs: int) -> None:
        super().__init__()
        self.n_outputs = n_outputs
        self.encoder = ResNet50Trunk()
        self.layers = nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, n_outputs))

    def regress(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(self.encoder(images))


class DecaEncoder(ResnetRegressor):
    """DECA's E_flame: images (B, 3, 224, 224) RGB in [0, 1] -> DecaCodes."""

    def __init__(self) -> None:
        super().__init__(DECA_CODE_SIZE)

    def forward(self, images: torch.Tensor) -> DecaCodes:
        return split_deca_code(self.regress(images))


class EmocaExpressionEncoder(ResnetRegressor):
    """EMOCA's E_expression (its 'deca_clone' backbone, the released EMOCA's): images (B, 3, 224, 224) RGB in
    [0, 1] -> FLAME expression (B, 50), which replaces DECA's."""

    def __init__(self) -> None:
        super().__init__(EMOCA_EXPRESSION_SIZE)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.regress(images)


class EmocaEncoder(nn.Module):
    """EMOCA's coarse encoding: DECA's E_flame (`flame_encoder`) for shape, tex, pose (jaw included), cam and light,
    EMOCA's E_expression (`expression_encoder`) for exp. images (B, 3, 224, 224) RGB in [0, 1] -> DecaCodes."""

    def __init__(self) -> None:
        super().__init__()
        self.flame_encoder = DecaEncoder()
        self.expression_encoder = EmocaExpressionEncoder()

    def forward(self, images: torch.Tensor) -> DecaCodes:
        return replace(self.flame_encoder(images), exp=self.expression_encoder(images))
