"""The neural renderer's networks behind one forward per optimisation step (as DDP needs), and the generator's
autoregressive roll-out over a run of frames.

Shapes: B sequences of L frames, S x S crops, C = CONDITION_CHANNELS, V mesh vertices (478 for MediaPipe's
topology, FLAME's 5023 for flame-*: `ConditioningTopology`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ned_outlier.renderer.neural.conditioning import (CONDITION_CHANNELS, ConditioningConfig, ConditioningTopology,
                                                     ConditionRenderer)
from ned_outlier.renderer.neural.losses import (RendererLossConfig, feature_matching_loss, lsgan_discriminator_loss,
                                                lsgan_generator_loss, make_perceptual)
from ned_outlier.renderer.neural.networks import (DiscriminatorConfig, GeneratorConfig, MultiscaleDiscriminator,
                                                  RendererGenerator, mouth_crops)


@dataclass(frozen=True)
class MouthBoxConfig:
    """The mouth discriminator's window: a square of `fraction` of the crop's side centred on the outer lips (NED:
    --ROI_size 72 at --loadSize 256)."""

    fraction: float = 72 / 256

    def side(self, size: int) -> int:
        return max(8, round(self.fraction * size))


@dataclass(frozen=True)
class RendererModelConfig:
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    mouth_box: MouthBoxConfig = field(default_factory=MouthBoxConfig)


def face_mask(conditions: torch.Tensor) -> torch.Tensor:
    """conditions (N, C, S, S) -> (N, 1, S, S) float: 1 where the mesh covers the pixel (NMFC not background)."""
    return (conditions[:, :1] > -1).float()


def mouth_boxes(lips: torch.Tensor, side: float) -> torch.Tensor:
    """lips (N, K, 2) x, y crop pixels of the outer lip points -> (N, 4) boxes x0, y0, x1, y1: squares of `side`
    pixels centred on the lips' bounding box."""
    centre = (lips.amin(dim=1) + lips.amax(dim=1)) / 2
    return torch.cat([centre - side / 2, centre + side / 2], dim=1)


class RendererNetworks(nn.Module):
    """Condition renderer (no weights) of `topology`'s meshes (MediaPipe's when None), generator, frame discriminator
    (condition + image) and mouth discriminator."""

    def __init__(self, config: RendererModelConfig, topology: ConditioningTopology | None = None):
        super().__init__()
        self.config = config
        self.conditions = ConditionRenderer(config.conditioning, topology)
        self.generator = RendererGenerator(CONDITION_CHANNELS, config.generator)
        d = config.discriminator
        self.discriminator = MultiscaleDiscriminator(CONDITION_CHANNELS + 3, d.ndf, d.n_layers, d.num_scales)
        # NED's mouth discriminator sees the mouth crop of the condition and of the image, as the frame one does
        self.mouth_discriminator = MultiscaleDiscriminator(CONDITION_CHANNELS + 3, d.mouth_ndf, d.mouth_n_layers,
                                                           d.mouth_num_scales)

    def condition_sequence(self, vertices: torch.Tensor) -> torch.Tensor:
        """vertices (B, L + 2, V, 3) -> (B, L + 2, C, S, S) conditioning images."""
        flat = self.conditions(vertices.flatten(0, 1))
        return flat.view(*vertices.shape[:2], *flat.shape[1:])

    def roll_out(self, conditions: torch.Tensor) -> torch.Tensor:
        """conditions (B, L + 2, C, S, S) -> (B, L, 3, S, S) frames generated one after another, each from the
        conditions of itself and the two frames before and from the two frames generated before it (zeros before
        the first, as NED at the start of every sequence; fed back detached, as NED's n_frames_backpropagate 1),
        masked to the face as NED's generator: -1 where the condition shows no face."""
        batch, steps = conditions.shape[0], conditions.shape[1] - 2
        size = conditions.shape[-1]
        previous = conditions.new_zeros(batch, 2, 3, size, size)
        frames = []
        for t in range(steps):
            frame = self.generator(conditions[:, t:t + 3].flatten(1, 2), previous.flatten(1, 2),
                                   face_mask(conditions[:, t + 2]))
            frames.append(frame)
            previous = torch.cat([previous[:, 1:], frame.detach()[:, None]], dim=1)
        return torch.stack(frames, dim=1)


class RendererObjective(nn.Module):
    """forward("g", images, conditions, vertices) -> (generator loss, terms, generated frames);
    forward("d", images, conditions, vertices, fakes) -> (discriminator loss, terms, fakes).

    images (B, L, 3, S, S) real crops in [-1, 1]; conditions (B, L + 2, C, S, S) from
    `nets.condition_sequence(vertices)` (rendered once for both steps); vertices (B, L + 2, V, 3) crop pixels (two
    frames of history first); fakes (B, L, 3, S, S) the generator step's frames."""

    def __init__(self, nets: RendererNetworks, loss: RendererLossConfig):
        super().__init__()
        self.nets, self.loss = nets, loss
        self.perceptual = make_perceptual(loss.perceptual, loss.perceptual_weights, loss.perceptual_imagenet_normalize)

    def forward(self, step: str, images: torch.Tensor, conditions: torch.Tensor, vertices: torch.Tensor,
                fakes: torch.Tensor | None = None):
        mask = face_mask(conditions[:, 2:].flatten(0, 1)).view(*images.shape[:2], 1, *images.shape[3:])
        images = images * mask - (1 - mask)  # the real frames' face only, as the generator's
        if step == "g":
            fakes = self.nets.roll_out(conditions)
            return (*self._generator_loss(images, fakes, conditions[:, 2:], vertices[:, 2:]), fakes)
        return (*self._discriminator_loss(images, fakes.detach(), conditions[:, 2:], vertices[:, 2:]), fakes)

    def _views(self, images: torch.Tensor, conditions: torch.Tensor, vertices: torch.Tensor):
        """Per frame (B * L): the discriminators' inputs, condition + image, whole and cropped to the mouth."""
        frame = torch.cat([conditions.flatten(0, 1), images.flatten(0, 1)], dim=1)
        side = self.nets.config.mouth_box.side(images.shape[-1])
        return frame, mouth_crops(frame, mouth_boxes(self.nets.conditions.lips(vertices.flatten(0, 1)), side), side)

    def _generator_loss(self, images, fakes, conditions, vertices):
        weights = self.loss
        real_frame, real_mouth = self._views(images, conditions, vertices)
        fake_frame, fake_mouth = self._views(fakes, conditions, vertices)
        d, dm = self.nets.discriminator, self.nets.mouth_discriminator
        with torch.no_grad():
            real_out, real_mouth_out = d(real_frame), dm(real_mouth)
        fake_out, fake_mouth_out = d(fake_frame), dm(fake_mouth)
        terms = {
            "gan": lsgan_generator_loss(fake_out),
            "feature_matching": feature_matching_loss(real_out, fake_out, weights.lambda_feat),
            "perceptual": weights.lambda_vgg * self.perceptual(fakes.flatten(0, 1), images.flatten(0, 1)),
            "mouth_gan": weights.lambda_mouth * lsgan_generator_loss(fake_mouth_out),
            "mouth_feature_matching": weights.lambda_mouth * feature_matching_loss(real_mouth_out, fake_mouth_out,
                                                                                   weights.lambda_feat),
        }
        return sum(terms.values()), {name: value.item() for name, value in terms.items()}

    def _discriminator_loss(self, images, fakes, conditions, vertices):
        real_frame, real_mouth = self._views(images, conditions, vertices)
        fake_frame, fake_mouth = self._views(fakes, conditions, vertices)
        d, dm = self.nets.discriminator, self.nets.mouth_discriminator
        terms = {
            "frame": lsgan_discriminator_loss(d(real_frame), d(fake_frame)),
            "mouth": lsgan_discriminator_loss(dm(real_mouth), dm(fake_mouth)),  # NED weighs only G's mouth terms
        }
        return sum(terms.values()), {name: value.item() for name, value in terms.items()}
