"""NED's optimisers: one Adam per network, the mapping network and (optionally) the discriminator at their own
rates, and the moving-average setting checked where it is configured."""

import pytest

from ned_outlier.manipulator.ned.networks import NedNetworkConfig, NedNetworks
from ned_outlier.manipulator.ned.trainer import OptimSection, TrainSection, make_optimizers

SMALL = NedNetworkConfig(style_dim=2, latent_dim=2, mapping_hidden=4, generator_hidden=4, generator_head=4,
                         trunk_hidden=(4, 4), trunk_lstm=2, trunk_head=(4, 4))


def rates(optim):
    return {name: o.param_groups[0]["lr"] for name, o in make_optimizers(NedNetworks(3, 2, SMALL), optim).items()}


def test_neds_rates_and_a_separate_discriminator_rate():
    assert rates(OptimSection(lr=1e-4, mapping_lr=2e-4)) == {
        "generator": 1e-4, "mapping": 2e-4, "style_encoder": 1e-4, "discriminator": 1e-4}
    assert rates(OptimSection(lr=1e-4, discriminator_lr=4e-4))["discriminator"] == 4e-4


@pytest.mark.parametrize("beta", [1.0, -0.5])
def test_an_averaging_beta_outside_zero_to_one_is_refused(beta):
    with pytest.raises(ValueError, match="train.ema_beta must lie in"):
        TrainSection(ema_beta=beta)
