"""The neural renderer's generator, discriminators and mouth crops: sizes, NED's layout, gradients."""

from __future__ import annotations

import pytest
import torch

from ned_outlier.renderer.neural.networks import (DiscriminatorConfig, GeneratorConfig, MultiscaleDiscriminator,
                                                  RendererGenerator, mouth_crops)

TINY = GeneratorConfig(ngf=8, n_downsample=2, n_blocks=1)


def test_defaults_are_neds():
    assert GeneratorConfig() == GeneratorConfig(ngf=64, n_downsample=3, n_blocks=9, condition_frames=3,
                                                previous_frames=2, norm="instance")
    assert DiscriminatorConfig() == DiscriminatorConfig(ndf=64, n_layers=3, num_scales=2, mouth_ndf=64,
                                                        mouth_n_layers=3, mouth_num_scales=2)
    with pytest.raises(ValueError):
        GeneratorConfig(norm="group")


def test_generator_output_shape_and_range():
    torch.manual_seed(0)
    generator = RendererGenerator(4, TINY)
    out = generator(torch.randn(2, 12, 64, 64) * 3, torch.rand(2, 6, 64, 64) * 2 - 1)
    assert out.shape == (2, 3, 64, 64)
    assert out.abs().max() <= 1


def test_generator_parameter_count_by_hand():
    # ngf 4, one downsampling, one ResNet block (in the encoders: 1 - 1 // 2 = 1; on the sum: 1 // 2 = 0),
    # instance norm without parameters; C = 3 so the condition input has 3 * 3 = 9 channels, previous 2 * 3 = 6.
    #   condition encoder: conv7 9->4: 9*4*49 + 4 = 1768; conv3 4->8: 4*8*9 + 8 = 296;
    #                      block at 8: 2 * (8*8*9 + 8) = 1168                                  -> 3232
    #   previous encoder:  conv7 6->4: 6*4*49 + 4 = 1180; 296; 1168                           -> 2644
    #   decoder:           transposed conv3 8->4: 8*4*9 + 4 = 292; conv7 4->3: 4*3*49 + 3 = 591 -> 883
    generator = RendererGenerator(3, GeneratorConfig(ngf=4, n_downsample=1, n_blocks=1))
    assert sum(p.numel() for p in generator.parameters()) == 3232 + 2644 + 883
    assert len(generator.trunk) == 0


def test_generator_uses_both_inputs():
    torch.manual_seed(0)
    generator = RendererGenerator(3, TINY)
    conditions = torch.randn(1, 9, 32, 32)
    previous = torch.rand(1, 6, 32, 32) * 2 - 1
    out = generator(conditions, previous)
    assert not torch.allclose(out, generator(conditions, torch.zeros_like(previous)))
    out.square().sum().backward()
    for name in ("condition_encoder", "previous_encoder"):
        first_conv = getattr(generator, name)[1]
        assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0, name


def test_generator_mask_and_shape_checks():
    generator = RendererGenerator(3, TINY)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    out = generator(torch.randn(1, 9, 32, 32), torch.zeros(1, 6, 32, 32), mask)
    assert torch.equal(out[..., :8, :], torch.full_like(out[..., :8, :], -1.0))
    with pytest.raises(ValueError):
        generator(torch.randn(1, 6, 32, 32), torch.zeros(1, 6, 32, 32))
    with pytest.raises(ValueError):
        generator(torch.randn(1, 9, 30, 30), torch.zeros(1, 6, 30, 30))


def test_initialisation_as_ned():
    torch.manual_seed(0)
    generator = RendererGenerator(3, GeneratorConfig(ngf=16, n_downsample=1, n_blocks=2))
    weights = torch.cat([m.weight.flatten() for m in generator.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.001 and abs(weights.mean().item()) < 0.001
    batch = RendererGenerator(3, GeneratorConfig(ngf=16, n_downsample=1, n_blocks=2, norm="batch"))
    norm_weights = torch.cat([m.weight for m in batch.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(norm_weights.mean().item() - 1) < 0.01 and 0 < norm_weights.std().item() < 0.04


def test_discriminator_scales_layers_and_shapes():
    torch.manual_seed(0)
    discriminator = MultiscaleDiscriminator(5, ndf=8, n_layers=3, num_scales=2)
    outputs = discriminator(torch.randn(2, 5, 64, 64))
    assert len(outputs) == 2 and [len(scale) for scale in outputs] == [5, 5]
    # 4x4 convs, padding 2: stride 2 gives floor(n / 2) + 1, stride 1 gives n + 1. Finest scale 64 pixels with
    # ndf 8; the next sees the 3x3/2 average-pooled 32 pixels and starts at min(64, 8 * 2) = 16 channels (NED).
    assert [tuple(m.shape) for m in outputs[0]] == [(2, 8, 33, 33), (2, 16, 17, 17), (2, 32, 9, 9),
                                                    (2, 64, 10, 10), (2, 1, 11, 11)]
    assert [tuple(m.shape) for m in outputs[1]] == [(2, 16, 17, 17), (2, 32, 9, 9), (2, 64, 5, 5),
                                                    (2, 128, 6, 6), (2, 1, 7, 7)]


def test_discriminator_width_capped_as_ned():
    discriminator = MultiscaleDiscriminator(3, ndf=64, n_layers=1, num_scales=3)
    widths = [scale.stages[0][0].out_channels for scale in discriminator.scales]
    assert widths == [64, 64, 64]


def test_mouth_crops_integer_box_is_a_slice():
    images = torch.arange(2 * 2 * 10 * 12, dtype=torch.float32).view(2, 2, 10, 12)
    boxes = torch.tensor([[3.0, 2.0, 7.0, 6.0], [0.0, 5.0, 4.0, 9.0]])
    crops = mouth_crops(images, boxes, 4)
    assert crops.shape == (2, 2, 4, 4)
    torch.testing.assert_close(crops[0], images[0, :, 2:6, 3:7])
    torch.testing.assert_close(crops[1], images[1, :, 5:9, 0:4])


def test_mouth_crops_shift_boxes_inside_and_pass_gradients():
    images = torch.arange(10 * 10, dtype=torch.float32).view(1, 1, 10, 10).requires_grad_()
    crops = mouth_crops(images, torch.tensor([[-2.0, 8.0, 2.0, 12.0]]), 4)
    torch.testing.assert_close(crops[0], images[0, :, 6:10, 0:4])
    crops.sum().backward()
    assert images.grad[0, 0, 6:10, 0:4].eq(1).all() and images.grad.sum() == 16
    outside = mouth_crops(images.detach(), torch.tensor([[-2.0, 0.0, 2.0, 4.0]]), 4, keep_inside=False)
    assert outside[0, 0, :, :1].eq(0).all()
