"""The neural renderer's loss terms, as NED's renderer computes them (renderer/models/head2head_model.py,
networks.py and train.py of the released code, which follow pix2pixHD / vid2vid).

D_s(.) is the s-th of S discriminator scales (networks.MultiscaleDiscriminator, finest first); D_s^j its j-th layer
output (j = 0 .. n_layers + 1, the last the patch predictions); mean(.) averages over every element of a map.

    L_D    = 0.5 * sum_s [ mean((D_s(real) - 1)^2) + mean(D_s(fake)^2) ]                     LSGAN, discriminator
    L_G    = sum_s mean((D_s(fake) - 1)^2)                                                   LSGAN, generator
    L_FM   = lambda_feat * sum_s sum_{j <= n_layers} 4 / (n_layers + 1) / S * mean|D_s^j(fake) - D_s^j(real)|
    L_VGG  = sum_i w_i * mean|phi_i(fake) - phi_i(real)|,  w = 1/32, 1/16, 1/8, 1/4, 1 on VGG19 relu1_1, relu2_1,
             relu3_1, relu4_1, relu5_1

The scales are summed, not averaged, as NED's GANLoss adds them up; the 0.5 of L_D is NED's train.py
((D_fake + D_real) * 0.5), and pix2pixHD does the same. NED's generator loss adds, with its defaults,
L_G + L_FM + lambda_feat * L_VGG for the frame discriminator and mouth_weight * (L_G + L_FM) for the mouth one;
its discriminator loss is L_D of the frame discriminator plus L_D of the mouth one (mouth_weight does not scale it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ned_outlier.errors import UserError

Outputs = list[list[torch.Tensor]]

PERCEPTUAL_KINDS = ("vgg19", "l1", "none")
VGG19_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
# torchvision's vgg19 `features` up to relu5_1: widths of the 3x3 convs, "M" a 2x2 max-pool; each conv is followed
# by a ReLU, so relu1_1 .. relu5_1 end the index ranges [0, 2), [2, 7), [7, 12), [12, 21), [21, 30)
VGG19_FEATURES = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
VGG19_SLICE_ENDS = (2, 7, 12, 21, 30)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_KEY = "loss.perceptual_weights"


@dataclass(frozen=True)
class RendererLossConfig:
    """Weights of the generator's terms, NED's defaults (renderer/options/train_options.py, head2head_model.py):
    lambda_feat = --lambda_feat 10 (feature matching); lambda_vgg = 10, as NED multiplies its VGG loss by the same
    --lambda_feat (it has no separate option); lambda_mouth = 1, NED's hard-coded mouth_weight. perceptual: "vgg19"
    (NED's VGG loss; needs perceptual_weights, a torchvision vgg19 state_dict file such as vgg19-dcbb9e9d.pth),
    "l1" (plain L1 between the images: the offline substitute, not NED's) or "none". perceptual_imagenet_normalize:
    give VGG19 ImageNet-normalised inputs, as its torchvision weights expect; false feeds the [-1, 1] images
    unnormalised, as NED's (pix2pixHD's) code does (the paper does not say).
    """

    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_mouth: float = 1.0
    perceptual: str = "vgg19"
    perceptual_weights: str | None = None
    perceptual_imagenet_normalize: bool = True

    def __post_init__(self) -> None:
        if self.perceptual not in PERCEPTUAL_KINDS:
            raise ValueError(f"perceptual must be one of {', '.join(PERCEPTUAL_KINDS)}, not {self.perceptual!r}")
        if min(self.lambda_feat, self.lambda_vgg, self.lambda_mouth) < 0:
            raise ValueError("loss weights must not be negative")


def _predictions(outputs: Outputs) -> list[torch.Tensor]:
    """The last map (patch predictions) of each scale."""
    return [scale[-1] for scale in outputs]


def lsgan_discriminator_loss(real_outputs: Outputs, fake_outputs: Outputs) -> torch.Tensor:
    """0.5 * sum_s [mean((D_s(real) - 1)^2) + mean(D_s(fake)^2)] over the last map of each scale of the
    MultiscaleDiscriminator outputs (per scale a list of maps, the last (B, 1, h, w)) -> scalar."""
    if len(real_outputs) != len(fake_outputs):
        raise ValueError("real and fake outputs must have the same number of scales")
    real = sum(((p - 1) ** 2).mean() for p in _predictions(real_outputs))
    fake = sum((p ** 2).mean() for p in _predictions(fake_outputs))
    return 0.5 * (real + fake)


def lsgan_generator_loss(fake_outputs: Outputs) -> torch.Tensor:
    """sum_s mean((D_s(fake) - 1)^2) over the last map of each scale -> scalar."""
    return sum(((p - 1) ** 2).mean() for p in _predictions(fake_outputs))


def feature_matching_loss(real_outputs: Outputs, fake_outputs: Outputs, lambda_feat: float) -> torch.Tensor:
    """lambda_feat * sum_s sum_{j < last} 4 / (n_layers + 1) / S * mean|fake_s^j - real_s^j| (real detached), with
    S scales of n_layers + 2 maps each (n_layers read from the outputs), as pix2pixHD / NED -> scalar."""
    if len(real_outputs) != len(fake_outputs):
        raise ValueError("real and fake outputs must have the same number of scales")
    total = fake_outputs[0][-1].new_zeros(())
    for real, fake in zip(real_outputs, fake_outputs):
        n_layers = len(fake) - 2
        weight = lambda_feat * 4.0 / (n_layers + 1) / len(fake_outputs)
        for real_map, fake_map in zip(real[:-1], fake[:-1]):
            total = total + weight * F.l1_loss(fake_map, real_map.detach())
    return total


def vgg19_features() -> nn.Sequential:
    """torchvision's vgg19().features[:30] (through relu5_1), same indices and so the same state_dict keys, randomly
    initialised."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_FEATURES:
        if item == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    return nn.Sequential(*layers)


def load_vgg19_features(path: str | Path) -> nn.Sequential:
    """vgg19_features() with the `features.*` weights of a torchvision vgg19 state_dict file (the classifier's are
    ignored); UserError when the file is missing or is not such a state_dict."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"VGG19 weights not found: {path}; put torchvision's vgg19 state_dict (vgg19-dcbb9e9d.pth) "
                        f"there or point {WEIGHTS_KEY} at it (or set loss.perceptual=l1 to train without it)")
    features = vgg19_features()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        wanted = {key: state[f"features.{key}"] for key in features.state_dict()}
        features.load_state_dict(wanted)
    except (KeyError, RuntimeError, TypeError, OSError, EOFError) as error:
        raise UserError(f"{path}: not a torchvision vgg19 state_dict ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''}); check {WEIGHTS_KEY}") from None
    return features


class VGG19Perceptual(nn.Module):
    """pix2pixHD's / NED's VGG loss: forward(fake, real) with images (N, 3, H, W) in [-1, 1] -> scalar
    sum_i w_i * mean|phi_i(fake) - phi_i(real)| over relu1_1 .. relu5_1 (weights VGG19_LAYER_WEIGHTS), the real
    features detached; images wider than 1024 are halved (2x2 average) until they are not, as NED.

    weights: a torchvision vgg19 state_dict file (never downloaded); or `features`, a vgg19_features()-shaped
    module to use as is (tests). The VGG weights are frozen. With imagenet_normalize (default) the images are
    mapped from [-1, 1] to ImageNet's normalisation, which the torchvision weights expect; NED and pix2pixHD feed
    the [-1, 1] images unnormalised (imagenet_normalize=False reproduces that)."""

    def __init__(self, weights: str | Path | None = None, *, features: nn.Sequential | None = None,
                 imagenet_normalize: bool = True):
        super().__init__()
        if (weights is None) == (features is None):
            raise ValueError("give exactly one of weights (a file) and features (a module)")
        features = load_vgg19_features(weights) if features is None else features
        self.slices = nn.ModuleList([features[start:end] for start, end in
                                     zip((0,) + VGG19_SLICE_ENDS[:-1], VGG19_SLICE_ENDS)])
        self.requires_grad_(False)
        self.imagenet_normalize = imagenet_normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images (N, 3, H, W) in [-1, 1] -> the five maps relu1_1 (N, 64, H, W) .. relu5_1 (N, 512, H/16, W/16)."""
        x = ((images + 1) / 2 - self.mean) / self.std if self.imagenet_normalize else images
        maps = []
        for block in self.slices:
            x = block(x)
            maps.append(x)
        return maps

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        while fake.shape[3] > 1024:
            fake, real = F.avg_pool2d(fake, 2), F.avg_pool2d(real, 2)
        total = fake.new_zeros(())
        for weight, a, b in zip(VGG19_LAYER_WEIGHTS, self.features(fake), self.features(real)):
            total = total + weight * F.l1_loss(a, b.detach())
        return total


class L1Perceptual(nn.Module):
    """The offline substitute for the VGG loss (not NED's): forward(fake, real) (N, 3, H, W) -> mean|fake - real|."""

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(fake, real.detach())


class NoPerceptual(nn.Module):
    """No perceptual term: forward(fake, real) -> 0."""

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return fake.new_zeros(())


def make_perceptual(kind: str, weights: str | Path | None, imagenet_normalize: bool = True) -> nn.Module:
    """The perceptual loss `kind` as a module called (fake, real) -> scalar: "vgg19" (NED's; `weights` is the
    torchvision vgg19 state_dict file; `imagenet_normalize` False feeds it [-1, 1] images as NED's code does), "l1"
    (offline substitute: plain L1 between the images) or "none" (0)."""
    if kind == "vgg19":
        if weights is None:
            raise UserError(f"loss.perceptual=vgg19 needs the VGG19 weights: set {WEIGHTS_KEY} to torchvision's "
                            "vgg19 state_dict file (vgg19-dcbb9e9d.pth), or set loss.perceptual=l1 to train offline")
        return VGG19Perceptual(weights, imagenet_normalize=imagenet_normalize)
    if kind == "l1":
        return L1Perceptual()
    if kind == "none":
        return NoPerceptual()
    raise UserError(f"unknown perceptual loss {kind!r} (valid kinds: {', '.join(PERCEPTUAL_KINDS)})")
