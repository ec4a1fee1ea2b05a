"""NED's loss terms, each reduced per sample (B,), and the CLIP outlier weight that multiplies them.

    outlier_weight(p) = 1 if p >= 0.6 else p          p: the scorer's probability of the sample's own label
    L = mean over the batch of  lambda_i * L_NED,i

NED (manipulator/train.py of the released code, as in the paper):
    L_D = (D(x, y) - 1)^2 + D(G(x, s~), y~)^2                                   LSGAN
    L_G = (D(x~, y~) - 1)^2 + w_sty |E(x~) - s~|_1 + w_cyc |G(x~, E(x)) - x|_1
          - w_mouth (rho(m(x), m(x~)) + rho(m(x~), m(x^)))
with x~ = G(x, s~) the fake, x^ = G(x~, E(x)) its cycle back, s~ the target style and m(.) the mouth code over time;
rho is the Pearson correlation over the window's frames. NED's mouth code is the jaw opening alone; with several
mouth components (the AU backend's AU24, AU25, AU26) rho is averaged over them. NED divides by the bare standard
deviations, which is NaN for a window whose mouth does not move; here `eps` is added to the variances.
"""

from __future__ import annotations

import torch

OUTLIER_THRESHOLD = 0.6


def outlier_weight(probability: torch.Tensor, threshold: float = OUTLIER_THRESHOLD) -> torch.Tensor:
    """lambda per sample: 1 where the probability of the sample's own label is >= threshold, else the probability."""
    return torch.where(probability >= threshold, torch.ones_like(probability), probability)


def weighted_mean(per_sample: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """mean_i weight_i * per_sample_i (plain mean without weights): lambda scales a sample's loss, it does not
    renormalise the batch."""
    return per_sample.mean() if weight is None else (weight * per_sample).mean()


def lsgan(scores: torch.Tensor, target: float) -> torch.Tensor:
    """(B,) discriminator scores -> (B,) (score - target)^2, target 1 for real, 0 for fake."""
    return (scores - target) ** 2


def style_reconstruction(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, S) styles -> (B,) mean absolute difference."""
    return (predicted - target).abs().mean(dim=-1)


def cycle_consistency(reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(B, T, C) codes -> (B,) mean absolute difference."""
    return (reconstructed - real).abs().flatten(1).mean(dim=1)


def mouth_correlation(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(B, T, M) mouth codes -> (B,) Pearson correlation over T, averaged over the M components."""
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    covariance = (a * b).mean(dim=1)
    correlation = covariance * torch.rsqrt((a**2).mean(dim=1) + eps) * torch.rsqrt((b**2).mean(dim=1) + eps)
    return correlation.mean(dim=-1)
