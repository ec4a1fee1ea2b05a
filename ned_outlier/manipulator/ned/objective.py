"""One NED training iteration's losses, as the released code computes them (manipulator/train.py), with the outlier
weights applied per sample.

Each iteration draws source windows x with labels y and weights lambda, reference windows x_r with labels y~ and
weights lambda_r, and latent codes z. The target style s~ is mapping(z, y~) (latent-guided) or style_encoder(x_r)
(reference-guided). A term that involves only the source is weighted by lambda; a term that involves the target
(the fake x~ and its cycle) by lambda for a latent-guided step and by lambda * lambda_r for a reference-guided one,
since a wrong reference label misleads the step as much as a wrong source label.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ned_outlier.manipulator.ned.losses import (cycle_consistency, lsgan, mouth_correlation, style_reconstruction,
                                                weighted_mean)
from ned_outlier.manipulator.ned.networks import NedNetworks


@dataclass(frozen=True)
class LossWeights:
    """NED's weights of the generator's terms (all 1 in NED)."""

    style: float = 1.0
    cycle: float = 1.0
    mouth: float = 1.0


@dataclass(frozen=True)
class Windows:
    """A batch of windows: codes (B, T, C) with the mouth code first, emotion (B,) int64, weight (B,) lambda or None
    (every sample weighted 1)."""

    codes: torch.Tensor
    emotion: torch.Tensor
    weight: torch.Tensor | None = None


@dataclass(frozen=True)
class Target:
    """What a step translates toward: style (B, S), emotion (B,), and the weight of target terms (B,) or None."""

    style: torch.Tensor
    emotion: torch.Tensor
    weight: torch.Tensor | None


def _product(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None or b is None:
        return a if b is None else b
    return a * b


def latent_target(nets: NedNetworks, source: Windows, z: torch.Tensor, emotion: torch.Tensor) -> Target:
    """s~ = mapping(z, y~) for latents z (B, latent_dim) and target emotions y~ (B,)."""
    return Target(nets.mapping(z, emotion), emotion, source.weight)


def reference_target(nets: NedNetworks, source: Windows, reference: Windows) -> Target:
    """s~ = style_encoder(x_r), toward the reference's emotion."""
    return Target(nets.style_encoder(reference.codes), reference.emotion, _product(source.weight, reference.weight))


def discriminator_loss(nets: NedNetworks, source: Windows, target: Target) -> tuple[torch.Tensor, dict[str, float]]:
    """L_D: the real windows scored as real for their own emotion, the generator's fakes (no gradient to it) as
    fake for the target emotion. Returns the weighted scalar and the unweighted batch means of its terms."""
    real = lsgan(nets.discriminator(source.codes, source.emotion), 1.0)
    with torch.no_grad():
        fake_codes = nets.generator(source.codes, target.style.detach())
    fake = lsgan(nets.discriminator(fake_codes, target.emotion), 0.0)
    loss = weighted_mean(real, source.weight) + weighted_mean(fake, target.weight)
    return loss, {"real": real.mean().item(), "fake": fake.mean().item()}


def generator_loss(nets: NedNetworks, source: Windows, target: Target, mouth_dims: int,
                   weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, float]]:
    """L_G for the source windows translated toward `target`; the first `mouth_dims` code components are the mouth.
    Returns the weighted scalar and the unweighted batch means of its terms."""
    fake = nets.generator(source.codes, target.style)
    adversarial = lsgan(nets.discriminator(fake, target.emotion), 1.0)
    style = style_reconstruction(nets.style_encoder(fake), target.style)
    reconstructed = nets.generator(fake, nets.style_encoder(source.codes))
    cycle = cycle_consistency(reconstructed, source.codes)
    mouth = (mouth_correlation(source.codes[..., :mouth_dims], fake[..., :mouth_dims])
             + mouth_correlation(fake[..., :mouth_dims], reconstructed[..., :mouth_dims]))
    per_sample = adversarial + weights.style * style + weights.cycle * cycle - weights.mouth * mouth
    parts = {"adversarial": adversarial, "style": style, "cycle": cycle, "mouth": mouth}
    return weighted_mean(per_sample, target.weight), {name: value.mean().item() for name, value in parts.items()}
