"""The neural renderer's loss terms on hand-computed cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.vgg import cfgs, make_layers

from ned_outlier.errors import UserError
from ned_outlier.renderer.neural.losses import (VGG19_LAYER_WEIGHTS, RendererLossConfig, VGG19Perceptual,
                                                feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss,
                                                make_perceptual, vgg19_features)


def full(value: float, *shape: int) -> torch.Tensor:
    return torch.full(shape or (1, 1, 2, 2), float(value))


def test_lsgan_losses_by_hand():
    # two scales; only the last map of each counts.
    real = [[full(9), full(0.5)], [full(9), full(1.0)]]
    fake = [[full(9), full(0.5)], [full(9), full(-1.0)]]
    # D: 0.5 * [((0.5 - 1)^2 + 0.5^2) + ((1 - 1)^2 + (-1)^2)] = 0.5 * (0.25 + 0.25 + 0 + 1) = 0.75
    torch.testing.assert_close(lsgan_discriminator_loss(real, fake), torch.tensor(0.75))
    # G: (0.5 - 1)^2 + (-1 - 1)^2 = 0.25 + 4 = 4.25 (scales summed, as NED)
    torch.testing.assert_close(lsgan_generator_loss(fake), torch.tensor(4.25))


def test_feature_matching_by_hand():
    # two scales of n_layers = 1 (three maps: two intermediate, the predictions last, which are not matched);
    # weight = lambda_feat * 4 / (n_layers + 1) / S = 10 * 2 / 2 = 10
    real = [[full(0), full(0), full(0)], [full(2), full(1), full(0)]]
    fake = [[full(0.5), full(1), full(100)], [full(2), full(3), full(-100)]]
    real = [[m.requires_grad_() for m in scale] for scale in real]
    fake = [[m.requires_grad_() for m in scale] for scale in fake]
    # L1: scale 0: |0.5 - 0| + |1 - 0| = 1.5; scale 1: |2 - 2| + |3 - 1| = 2
    loss = feature_matching_loss(real, fake, lambda_feat=10.0)
    torch.testing.assert_close(loss, torch.tensor(10 * (0.5 + 1 + 0 + 2)))
    loss.backward()
    assert all(m.grad is None for scale in real for m in scale)  # the real features are detached
    assert fake[0][0].grad is not None and fake[0][2].grad is None  # the predictions are not matched


def test_loss_config_defaults_are_neds():
    config = RendererLossConfig()
    assert (config.lambda_feat, config.lambda_vgg, config.lambda_mouth) == (10.0, 10.0, 1.0)
    assert (config.perceptual, config.perceptual_weights) == ("vgg19", None)
    with pytest.raises(ValueError):
        RendererLossConfig(perceptual="lpips")


def test_vgg19_features_match_torchvision_layout():
    ours = vgg19_features()
    theirs = make_layers(cfgs["E"])[:30]
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    assert VGG19_LAYER_WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def test_vgg19_perceptual_layers_and_loss():
    torch.manual_seed(0)
    loss = VGG19Perceptual(features=vgg19_features())
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    maps = loss.features(images)
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4),
                                                  (512, 2, 2)]
    assert all(m.min() >= 0 for m in maps)  # every slice ends on a ReLU
    assert loss(images, images.clone()).item() == 0
    fake = (images + 0.3 * torch.randn_like(images)).requires_grad_()
    value = loss(fake, images)
    value.backward()
    assert fake.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    # pix2pixHD's VGGLoss on torchvision's own layers: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 are the outputs
    # of layers 1, 6, 11, 20 and 29, weighted 1/32, 1/16, 1/8, 1/4, 1, on ImageNet-normalised [0, 1] images
    layers = make_layers(cfgs["E"])[:30]
    layers.load_state_dict(loss_layers(loss))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = 0.0
    with torch.no_grad():
        for end, weight in zip((2, 7, 12, 21, 30), (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)):
            a, b = (layers[:end](((x + 1) / 2 - mean) / std) for x in (fake, images))
            expected += weight * (a - b).abs().mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    unnormalised = VGG19Perceptual(features=vgg19_features(), imagenet_normalize=False)
    unnormalised.load_state_dict(loss.state_dict())
    assert unnormalised(fake, images).item() != pytest.approx(expected.item(), rel=1e-3)  # the mapping matters


def loss_layers(loss: VGG19Perceptual) -> dict:
    """The VGG weights of `loss` under torchvision's names (features.<index>): its slices laid end to end."""
    return {f"{index}.{name}": value for index, layer in enumerate(m for block in loss.slices for m in block)
            for name, value in layer.state_dict().items()}


def test_vgg19_perceptual_reads_a_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    features = vgg19_features()
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # the rest of a vgg19 state_dict is ignored
    torch.save(state, tmp_path / "vgg19.pth")
    from_file = VGG19Perceptual(tmp_path / "vgg19.pth")
    direct = VGG19Perceptual(features=features)
    a, b = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(from_file(a, b), direct(a, b))


def test_vgg19_missing_or_bad_weights_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="loss.perceptual_weights") as missing:
        make_perceptual("vgg19", str(tmp_path / "vgg19-dcbb9e9d.pth"))
    assert "\n" not in str(missing.value)
    with pytest.raises(UserError, match="loss.perceptual_weights"):
        make_perceptual("vgg19", None)
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="not a torchvision vgg19"):
        make_perceptual("vgg19", str(tmp_path / "other.pth"))


def test_make_perceptual_l1_none_and_unknown():
    fake = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]]]).expand(1, 3, 2, 2)
    real = torch.zeros(1, 3, 2, 2)
    l1 = make_perceptual("l1", None)
    # mean of |0|, |1|, |-1|, |0.5| = 2.5 / 4
    torch.testing.assert_close(l1(fake, real), torch.tensor(0.625))
    torch.testing.assert_close(l1(fake, real), F.l1_loss(fake, real))
    assert make_perceptual("none", None)(fake, real).item() == 0
    with pytest.raises(UserError, match="vgg19, l1, none"):
        make_perceptual("lpips", None)
