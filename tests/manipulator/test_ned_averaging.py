"""The moving average of NED's networks (train.ema_beta) against its formula on hand-set weights."""

import pytest
import torch

from ned_outlier.manipulator.ned.averaging import AveragedNetworks
from ned_outlier.manipulator.ned.networks import NedNetworkConfig, NedNetworks

SMALL = NedNetworkConfig(style_dim=2, latent_dim=2, mapping_hidden=4, generator_hidden=4, generator_head=4,
                         trunk_hidden=(4, 4), trunk_lstm=2, trunk_head=(4, 4))


def test_average_follows_beta_and_the_discriminator_is_copied():
    nets = NedNetworks(3, 2, SMALL)
    with torch.no_grad():
        for p in nets.parameters():
            p.zero_()
    averaged = AveragedNetworks(nets, beta=0.75)
    with torch.no_grad():
        for p in nets.parameters():
            p.fill_(1.0)
        nets.code_scale.fill_(2.0)
    averaged.update(nets)  # 0.75 * 0 + 0.25 * 1
    for name in ("generator", "mapping", "style_encoder"):
        assert all(torch.allclose(p, torch.full_like(p, 0.25)) for p in getattr(averaged.nets, name).parameters())
    assert all(torch.equal(p, torch.ones_like(p)) for p in averaged.nets.discriminator.parameters())
    assert torch.equal(averaged.nets.code_scale, torch.full((3,), 2.0))
    averaged.update(nets)  # 0.75 * 0.25 + 0.25 * 1
    assert next(averaged.nets.generator.parameters()).flatten()[0].item() == pytest.approx(0.4375)
    assert not any(p.requires_grad for p in averaged.parameters())


@pytest.mark.parametrize("beta", [0.0, 1.0, -0.1])
def test_beta_outside_the_open_interval_is_refused(beta):
    with pytest.raises(ValueError, match="beta must lie in"):
        AveragedNetworks(NedNetworks(3, 2, SMALL), beta)
