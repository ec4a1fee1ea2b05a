"""NED's networks (sizes, per-emotion heads, He initialisation) and one iteration's losses with outlier weights."""

import math

import pytest
import torch

from ned_outlier.manipulator.ned.losses import cycle_consistency, lsgan, mouth_correlation, style_reconstruction
from ned_outlier.manipulator.ned.networks import NedNetworkConfig, NedNetworks
from ned_outlier.manipulator.ned.objective import (LossWeights, Windows, discriminator_loss, generator_loss,
                                                   latent_target, reference_target)

CODES, EMOTIONS, B, T = 20, 7, 4, 10


@pytest.fixture
def nets():
    torch.manual_seed(0)
    return NedNetworks(CODES, EMOTIONS)


def windows(seed, weight=None):
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(B, T, CODES, generator=generator)
    return Windows(codes, torch.randint(0, EMOTIONS, (B,), generator=generator), weight)


def test_shapes_and_neds_sizes(nets):
    x, style = torch.randn(B, T, CODES), torch.randn(B, 16)
    assert nets.generator(x, style).shape == (B, T, CODES)
    assert nets.mapping(torch.randn(B, 4), torch.arange(B)).shape == (B, 16)
    assert nets.style_encoder(x).shape == (B, 16)
    assert nets.discriminator(x, torch.arange(B)).shape == (B,)
    lstm = nets.generator.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bidirectional) == (512, 512, 2, True)
    assert [m.out_features for m in nets.generator.decode if isinstance(m, torch.nn.Linear)] == [1024, 1024, CODES]
    assert [m.out_features for m in nets.mapping.shared if isinstance(m, torch.nn.Linear)] == [64, 64, 64]
    assert len(nets.mapping.heads) == EMOTIONS
    assert nets.discriminator.trunk.lstm.hidden_size == 128


def test_heads_are_chosen_per_sample(nets):
    z = torch.randn(3, 4)
    emotion = torch.tensor([2, 0, 6])
    styles = nets.mapping(z, emotion)
    shared = nets.mapping.shared(z)
    for i, e in enumerate(emotion.tolist()):
        torch.testing.assert_close(styles[i], nets.mapping.heads[e](shared[i]))
    x = torch.randn(3, T, CODES)
    scores = nets.discriminator(x, emotion)
    all_scores = nets.discriminator.trunk(x)
    torch.testing.assert_close(scores, all_scores[torch.arange(3), emotion])


def test_bidirectional_generator_sees_the_whole_window(nets):
    x, style = torch.randn(1, T, CODES), torch.randn(1, 16)
    changed = x.clone()
    changed[0, -1] += 1.0
    assert not torch.allclose(nets.generator(x, style)[0, 0], nets.generator(changed, style)[0, 0])


def test_he_initialisation():
    nets = NedNetworks(CODES, EMOTIONS, NedNetworkConfig(generator_head=2048))
    layer = nets.generator.decode[2]  # Linear(2048, 2048)
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / 2048), rel=0.02)
    assert all(m.bias.abs().sum() == 0 for m in nets.modules() if isinstance(m, torch.nn.Linear))


def test_generator_loss_is_neds_formula(nets):
    source = windows(1)
    target = latent_target(nets, source, torch.randn(B, 4), torch.tensor([1, 2, 3, 4]))
    weights = LossWeights(style=0.5, cycle=2.0, mouth=3.0)
    loss, parts = generator_loss(nets, source, target, mouth_dims=3, weights=weights)
    fake = nets.generator(source.codes, target.style)
    rec = nets.generator(fake, nets.style_encoder(source.codes))
    by_hand = (lsgan(nets.discriminator(fake, target.emotion), 1.0)
               + 0.5 * style_reconstruction(nets.style_encoder(fake), target.style)
               + 2.0 * cycle_consistency(rec, source.codes)
               - 3.0 * (mouth_correlation(source.codes[..., :3], fake[..., :3])
                        + mouth_correlation(fake[..., :3], rec[..., :3])))
    assert loss.item() == pytest.approx(by_hand.mean().item(), rel=1e-5)
    assert set(parts) == {"adversarial", "style", "cycle", "mouth"}


def d_loss(nets, source, z, emotion):
    return discriminator_loss(nets, source, latent_target(nets, source, z, emotion))[0]


def g_loss(nets, source, z, emotion):
    return generator_loss(nets, source, latent_target(nets, source, z, emotion), mouth_dims=3)[0]


@pytest.mark.parametrize("loss_of", [d_loss, g_loss])
def test_outlier_weights_multiply_each_samples_terms(nets, loss_of):
    z, emotion = torch.randn(B, 4), torch.tensor([0, 1, 2, 3])
    plain, weight = windows(2), torch.tensor([1.0, 0.5, 0.0, 0.25])
    alone = torch.stack([loss_of(nets, Windows(plain.codes[i:i + 1], plain.emotion[i:i + 1]), z[i:i + 1],
                                 emotion[i:i + 1]) for i in range(B)])  # each sample's unweighted loss
    weighted = loss_of(nets, Windows(plain.codes, plain.emotion, weight), z, emotion)
    assert weighted.item() == pytest.approx((weight * alone).mean().item(), rel=1e-4, abs=1e-6)
    assert loss_of(nets, plain, z, emotion).item() == pytest.approx(alone.mean().item(), rel=1e-4)


def test_a_reference_step_weights_target_terms_by_both_samples(nets):
    source, reference = windows(3, torch.tensor([1.0, 0.5, 1.0, 0.2])), windows(4, torch.tensor([0.3, 1.0, 1.0, 1.0]))
    target = reference_target(nets, source, reference)
    torch.testing.assert_close(target.weight, torch.tensor([0.3, 0.5, 1.0, 0.2]))
    torch.testing.assert_close(target.style, nets.style_encoder(reference.codes))
    assert torch.equal(target.emotion, reference.emotion)


def test_standardised_networks_are_blind_to_each_components_scale(nets):
    """The standardised networks (data.standardise_codes) see the same thing when a component's unit changes."""
    codes = torch.randn(6, T, CODES) * 0.1 + 0.3
    unit = torch.linspace(0.05, 20.0, CODES)  # each component in another unit
    nets.set_code_statistics(codes)
    rescaled = NedNetworks(CODES, EMOTIONS)
    rescaled.load_state_dict(nets.state_dict())
    rescaled.set_code_statistics(codes * unit)
    torch.testing.assert_close(rescaled.code_scale, nets.code_scale * unit)
    style = torch.randn(6, 16)
    torch.testing.assert_close(rescaled.translate(codes * unit, style), nets.translate(codes, style) * unit,
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(rescaled.encode_style(codes * unit), nets.encode_style(codes), rtol=1e-4, atol=1e-5)
    standard = nets.standardise(codes).reshape(-1, CODES)
    torch.testing.assert_close(standard.mean(dim=0), torch.zeros(CODES), atol=1e-5, rtol=0)
    torch.testing.assert_close(standard.std(dim=0), torch.ones(CODES), atol=1e-4, rtol=0)


def test_unstandardised_by_default(nets):
    """NED's networks take the codes as they are."""
    x, style = torch.randn(B, T, CODES), torch.randn(B, 16)
    torch.testing.assert_close(nets.translate(x, style), nets.generator(x, style))
