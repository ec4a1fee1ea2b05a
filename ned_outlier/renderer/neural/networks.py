"""The neural renderer's networks, sized and initialised as NED's renderer (renderer/models/networks.py of the
released code, which follows Head2Head, vid2vid and pix2pixHD).

Shapes: B images of H x W pixels; C channels of one frame's conditioning image; K = condition_frames (3, NED's
--n_frames_G), P = previous_frames (2 = n_frames_G - 1).

    generator       conditions (B, K*C, H, W) of frames t-2, t-1, t and the frames generated for t-2, t-1
                    (B, P*3, H, W) -> frame t (B, 3, H, W) in [-1, 1].
                    Two encoders with the same layout, one per input, their features summed:
                        reflect-pad 3, conv 7x7 -> ngf, norm, ReLU;
                        n_downsample x (conv 3x3 stride 2, channels doubled, norm, ReLU);
                        n_blocks - n_blocks // 2 ResNet blocks;
                    then n_blocks // 2 ResNet blocks on the sum, n_downsample x (transposed conv 3x3 stride 2,
                    channels halved, norm, ReLU), reflect-pad 3, conv 7x7 -> 3, tanh.
                    ResNet block: x + (reflect-pad 1, conv 3x3, norm, ReLU, reflect-pad 1, conv 3x3, norm)(x).
                    NED's generator also takes a face mask as the last channel of each frame's condition and
                    returns out * mask - (1 - mask) (black outside the face); here that is the optional `mask`.
    discriminator   pix2pixHD's multi-scale PatchGAN: num_scales copies, each on the input average-pooled once
                    more (3x3, stride 2, padding 1, padding not counted); each has n_layers conv 4x4 stride 2
                    (padding 2, LeakyReLU 0.2, norm from the second on; channels doubled, at most 512), a conv 4x4
                    stride 1 (norm, LeakyReLU) and a conv 4x4 stride 1 to one channel; every layer's output is
                    returned (the feature-matching loss uses all but the last). The scale s (0 = finest) starts
                    with min(64, ndf * 2^s) channels, as NED (ndf_max = 64), so with ndf 64 every scale has 64.
                    NED's frame discriminator sees frame t's condition (its 9 channels, not the mask) and the
                    image; its mouth discriminator is the same network, with the same options, on crops of both.

Norm "instance" is InstanceNorm2d without affine parameters. NED builds it with running statistics but never calls
eval(), so its test-time generator also normalises with each image's own statistics; without the running buffers
eval() here does the same. "batch" is BatchNorm2d with affine parameters.

Initialisation as NED's weights_init: conv and transposed-conv weights N(0, 0.02), BatchNorm weights N(1, 0.02) and
biases 0; the conv biases keep torch's default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.ops import roi_align

NORMS = ("instance", "batch")
NDF_MAX = 64  # NED's MultiscaleDiscriminator caps the first layer's width of every scale at 64
CHANNELS_MAX = 512  # and every layer's width at 512 (NLayerDiscriminator)


@dataclass(frozen=True)
class GeneratorConfig:
    """NED's defaults (renderer/options/base_options.py): ngf = --ngf 64, n_downsample = --n_downsample_G 3,
    n_blocks = --n_blocks 9, condition_frames = --n_frames_G 3, previous_frames = n_frames_G - 1 = 2 (0 is NED's
    --no_prev_output: no previous-frame encoder), norm = --norm "instance"."""

    ngf: int = 64
    n_downsample: int = 3
    n_blocks: int = 9
    condition_frames: int = 3
    previous_frames: int = 2
    norm: str = "instance"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if min(self.ngf, self.condition_frames) < 1 or min(self.n_downsample, self.n_blocks,
                                                           self.previous_frames) < 0:
            raise ValueError("ngf and condition_frames must be >= 1; n_downsample, n_blocks, previous_frames >= 0")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """NED's defaults (renderer/options/base_options.py, train_options.py): ndf = --ndf 64, n_layers = --n_layers_D
    3, num_scales = --num_D 2; NED builds the mouth discriminator (netDm, head2head_model.py) with the same three
    options, hence the same defaults for mouth_ndf, mouth_n_layers, mouth_num_scales."""

    ndf: int = 64
    n_layers: int = 3
    num_scales: int = 2
    mouth_ndf: int = 64
    mouth_n_layers: int = 3
    mouth_num_scales: int = 2

    def __post_init__(self) -> None:
        if min(self.ndf, self.n_layers, self.num_scales, self.mouth_ndf, self.mouth_n_layers,
               self.mouth_num_scales) < 1:
            raise ValueError("every discriminator width, depth and number of scales must be at least 1")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The normalisation layer `kind` ("instance" or "batch") over `channels`."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {kind!r}")


def init_weights(module: nn.Module) -> None:
    """NED's weights_init for one module (use with `net.apply`): conv weights N(0, 0.02), norm weights N(1, 0.02)
    and norm biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class ResnetBlock(nn.Module):
    """(B, D, h, w) -> (B, D, h, w): x + two reflect-padded 3x3 convs with norm (ReLU between)."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer(norm, channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def encoder(in_channels: int, config: GeneratorConfig) -> nn.Sequential:
    """(B, in_channels, H, W) -> (B, ngf * 2^n_downsample, H / 2^n, W / 2^n): stem, downsampling, the first
    n_blocks - n_blocks // 2 ResNet blocks."""
    ngf, norm = config.ngf, config.norm
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), norm_layer(norm, ngf),
                               nn.ReLU(True)]
    for i in range(config.n_downsample):
        width = ngf * 2 ** i
        layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), norm_layer(norm, 2 * width), nn.ReLU(True)]
    bottleneck = ngf * 2 ** config.n_downsample
    layers += [ResnetBlock(bottleneck, norm) for _ in range(config.n_blocks - config.n_blocks // 2)]
    return nn.Sequential(*layers)


def decoder(config: GeneratorConfig) -> nn.Sequential:
    """(B, ngf * 2^n, H / 2^n, W / 2^n) -> (B, 3, H, W) in [-1, 1]: upsampling then a 7x7 conv and tanh."""
    ngf, norm = config.ngf, config.norm
    layers: list[nn.Module] = []
    for i in range(config.n_downsample, 0, -1):
        width = ngf * 2 ** i
        layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                   norm_layer(norm, width // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class RendererGenerator(nn.Module):
    """NED's (Head2Head's) sequential generator: one frame from the conditions of it and the frames before it and
    from the frames generated before it. H and W must be multiples of 2^n_downsample (NED: 256 and 8)."""

    def __init__(self, condition_channels: int, config: GeneratorConfig):
        super().__init__()
        if condition_channels < 1:
            raise ValueError("condition_channels must be at least 1")
        self.condition_channels, self.config = condition_channels, config
        self.condition_encoder = encoder(condition_frames_channels(condition_channels, config), config)
        self.previous_encoder = encoder(3 * config.previous_frames, config) if config.previous_frames else None
        bottleneck = config.ngf * 2 ** config.n_downsample
        self.trunk = nn.Sequential(*[ResnetBlock(bottleneck, config.norm) for _ in range(config.n_blocks // 2)])
        self.decoder = decoder(config)
        self.apply(init_weights)

    def forward(self, conditions: torch.Tensor, previous: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """conditions (B, K*C, H, W): the conditioning images of frames t-2, t-1, t (oldest first);
        previous (B, P*3, H, W): the frames generated for t-2, t-1 in [-1, 1], oldest first. NED feeds zeros
        where there are none yet: at the start of every training sequence and of every test sequence (its
        --no_first_img is always on), so its first generated frame (frame 2 of a sequence, from the conditions of
        frames 0, 1, 2) sees two zero frames; with previous_frames 0 `previous` is ignored;
        mask (B, 1, H, W) in [0, 1], optional: NED's face mask of frame t, out * mask - (1 - mask);
        -> (B, 3, H, W) frame t in [-1, 1]."""
        self._check(conditions, previous)
        features = self.condition_encoder(conditions)
        if self.previous_encoder is not None:
            features = features + self.previous_encoder(previous)
        out = self.decoder(self.trunk(features))
        return out if mask is None else out * mask - (1 - mask)

    def _check(self, conditions: torch.Tensor, previous: torch.Tensor) -> None:
        expected = condition_frames_channels(self.condition_channels, self.config)
        if conditions.dim() != 4 or conditions.shape[1] != expected:
            raise ValueError(f"conditions must be (B, {expected}, H, W), got {tuple(conditions.shape)}")
        if self.previous_encoder is not None and (previous.dim() != 4 or previous.shape[1] != 3 *
                                                  self.config.previous_frames or previous.shape[2:] !=
                                                  conditions.shape[2:]):
            raise ValueError(f"previous must be (B, {3 * self.config.previous_frames}, "
                             f"{conditions.shape[2]}, {conditions.shape[3]}), got {tuple(previous.shape)}")
        step = 2 ** self.config.n_downsample
        if conditions.shape[2] % step or conditions.shape[3] % step:
            raise ValueError(f"H and W must be multiples of {step}, got {tuple(conditions.shape[2:])}")


def condition_frames_channels(condition_channels: int, config: GeneratorConfig) -> int:
    """Channels of the generator's condition input: condition_frames * condition_channels."""
    return config.condition_frames * condition_channels


class PatchDiscriminator(nn.Module):
    """pix2pixHD's NLayerDiscriminator: (B, in_channels, H, W) -> its n_layers + 2 layer outputs, the last (B, 1,
    h, w) the patch predictions."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int, norm: str = "instance"):
        super().__init__()
        widths = [in_channels] + [min(ndf * 2 ** i, CHANNELS_MAX) for i in range(n_layers + 1)]
        stages = [nn.Sequential(nn.Conv2d(widths[0], widths[1], 4, stride=2, padding=2), nn.LeakyReLU(0.2, True))]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            stages.append(nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 4, stride=stride, padding=2),
                                        norm_layer(norm, widths[i + 1]), nn.LeakyReLU(0.2, True)))
        stages.append(nn.Sequential(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=2)))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's multi-scale PatchGAN over (B, in_channels, H, W) inputs (NED: condition of frame t + image)."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int, num_scales: int, norm: str = "instance"):
        super().__init__()
        if min(in_channels, ndf, n_layers, num_scales) < 1:
            raise ValueError("in_channels, ndf, n_layers and num_scales must be at least 1")
        self.n_layers, self.num_scales = n_layers, num_scales
        self.scales = nn.ModuleList([PatchDiscriminator(in_channels, scale_width(ndf, s), n_layers, norm)
                                     for s in range(num_scales)])
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """x (B, in_channels, H, W) -> per scale (finest first) its n_layers + 2 layer outputs; the last of each,
        (B, 1, h, w), is the patch predictions."""
        results = []
        for s, scale in enumerate(self.scales):
            results.append(scale(x))
            if s + 1 < self.num_scales:
                x = self.downsample(x)
        return results


def scale_width(ndf: int, scale: int) -> int:
    """First-layer width of the discriminator at `scale` (0 = finest): min(64, ndf * 2^scale), as NED."""
    return min(NDF_MAX, ndf * 2 ** scale)


def mouth_crops(images: torch.Tensor, boxes: torch.Tensor, size: int, keep_inside: bool = True) -> torch.Tensor:
    """images (B, C, H, W), boxes (B, 4) x0, y0, x1, y1 in pixels (pixel i spans [i, i + 1]) -> (B, C, size, size)
    bilinear crops (torchvision roi_align, aligned; several samples per output pixel when the box is larger);
    differentiable with respect to the images. With `keep_inside`, a box that sticks out of the image is first
    shifted back inside it, as NED moves its mouth window into the frame (util.fit_ROI_in_frame); a box larger
    than the image is centred on it. Samples outside the image read as 0."""
    if images.dim() != 4 or boxes.shape != (images.shape[0], 4):
        raise ValueError(f"expected images (B, C, H, W) and boxes (B, 4), got {tuple(images.shape)} and "
                         f"{tuple(boxes.shape)}")
    boxes = boxes.to(device=images.device, dtype=images.dtype)
    if keep_inside:
        boxes = shift_inside(boxes, images.shape[3], images.shape[2])
    index = torch.arange(len(boxes), device=images.device, dtype=images.dtype)[:, None]
    return roi_align(images, torch.cat([index, boxes], dim=1), (size, size), spatial_scale=1.0, sampling_ratio=-1,
                     aligned=True)


def shift_inside(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(N, 4) boxes x0, y0, x1, y1 -> the same boxes translated (not resized) to lie within [0, width] x
    [0, height]; a box larger than the image along an axis is centred on it along that axis."""
    limits = boxes.new_tensor([width, height])
    low, extent = boxes[:, :2], boxes[:, 2:] - boxes[:, :2]
    room = limits - extent
    shifted = torch.where(room >= 0, torch.minimum(low.clamp(min=0), room), room / 2)
    return torch.cat([shifted, shifted + extent], dim=1)
