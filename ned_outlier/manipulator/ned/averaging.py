"""An exponential moving average of NED's networks, as StarGAN v2 (the architecture NED builds on) keeps `nets_ema`
and evaluates and exports only it. NED's released code trains without one; the trainer's `train.ema_beta` (0: off,
NED) turns it on.

    averaged = AveragedNetworks(nets, beta=0.999)
    ...after every iteration: averaged.update(nets)
    averaged.nets          # what is evaluated and saved
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ned_outlier.manipulator.ned.networks import NedNetworks

AVERAGED = ("generator", "mapping", "style_encoder")  # StarGAN v2 averages these; the discriminator is only copied


class AveragedNetworks(nn.Module):
    """A copy of `nets` whose generator, mapping network and style encoder weights follow
    avg <- beta * avg + (1 - beta) * current after each update (the discriminator and buffers are copied as they
    are). A module, so that accelerate's checkpoints carry it."""

    def __init__(self, nets: NedNetworks, beta: float):
        super().__init__()
        if not 0.0 < beta < 1.0:
            raise ValueError(f"the averaging beta must lie in (0, 1), not {beta}")
        self.beta = beta
        self.nets = copy.deepcopy(nets).requires_grad_(False)

    @torch.no_grad()
    def update(self, nets: NedNetworks) -> None:
        for name, module in self.nets.named_children():
            for average, current in zip(module.parameters(), getattr(nets, name).parameters()):
                if name in AVERAGED:
                    average.lerp_(current, 1.0 - self.beta)
                else:
                    average.copy_(current)
        for average, current in zip(self.nets.buffers(), nets.buffers()):
            average.copy_(current)
