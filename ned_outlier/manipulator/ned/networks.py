"""NED's four networks over windows of per-frame codes x (B, T, C), T = 10 in NED.

A frame's code is the FaceParams mouth code followed by its expression code (C = M + E: 3 + 17 for the mediapipe-au
backend, NED's 1 jaw opening + 50 FLAME expression = 51 for DECA), the mouth first as NED puts the jaw first.
Sizes are NED's (manipulator/models/networks.py of the released code, which the paper's description matches):

    generator       x (B, T, C), style s (B, S) -> x' (B, T, C): [x_t, s] -> 512 -> 512 -> 2-layer BiLSTM(512)
                    -> 1024 -> 1024 -> C, ReLU between; it predicts the new codes themselves.
    mapping network z (B, 4), emotion y (B,) -> s (B, 16): shared 4 -> 64 -> 64 -> 64, one head per emotion
                    64 -> 64 -> 16.
    style encoder   x (B, T, C) -> s (B, 16): C -> 512 -> 256 -> 2-layer BiLSTM(128) -> 128 -> 64 -> 16 per frame,
                    averaged over time.
    discriminator   x (B, T, C), y (B,) -> (B,): the style encoder's trunk with one output per emotion, averaged
                    over time, the output of emotion y taken.

Linear layers start from He (fan-in) normal weights and zero biases, as NED and StarGAN v2 initialise them; the
LSTMs keep torch's initialisation.

The networks see codes standardised by a per-component mean and scale kept with them (buffers code_mean,
code_scale; `translate` and `encode_style` take and give codes as they are). NED uses DECA's codes unchanged
(mean 0, scale 1 here, the default); the trainer's data.standardise_codes sets them from the training windows,
for codes whose components differ in scale, as the AU backend's do (standard deviations from 0.03 to 0.7).
Networks made with relative_to_neutral (the trainer's data.relative_to_neutral) see each code minus its person's
neutral code: `translate`, `encode_style` and `standardise` then take that neutral code, (B, C), and
`translate` adds it back to what the generator gives. Not in NED: DECA's expression codes carry little of the
person, while the AU backend's carry much of the resting face (docs/ned.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class NedNetworkConfig:
    """Widths of the networks (NED's defaults); the code size and the emotions come from the data."""

    style_dim: int = 16
    latent_dim: int = 4
    mapping_hidden: int = 64
    generator_hidden: int = 512
    generator_head: int = 1024
    trunk_hidden: tuple[int, int] = (512, 256)
    trunk_lstm: int = 128
    trunk_head: tuple[int, int] = (128, 64)

    def __post_init__(self) -> None:
        if min(self.style_dim, self.latent_dim, self.mapping_hidden, self.generator_hidden, self.generator_head,
               self.trunk_lstm, *self.trunk_hidden, *self.trunk_head) < 1:
            raise ValueError("every network width must be at least 1")


def mlp(*widths: int, last_relu: bool) -> nn.Sequential:
    """Linear layers through `widths` with ReLU between them (and after the last if `last_relu`)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if last_relu or i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def select(per_emotion: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
    """(B, K, ...) outputs per emotion, (B,) emotion indices -> (B, ...) the output of each sample's emotion."""
    return per_emotion[torch.arange(len(emotion), device=emotion.device), emotion]


class Generator(nn.Module):
    def __init__(self, code_dim: int, config: NedNetworkConfig):
        super().__init__()
        hidden, head = config.generator_hidden, config.generator_head
        self.encode = mlp(code_dim + config.style_dim, hidden, hidden, last_relu=True)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.decode = mlp(2 * hidden, head, head, code_dim, last_relu=False)

    def forward(self, codes: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """codes (B, T, C), style (B, S) -> new codes (B, T, C)."""
        style = style[:, None, :].expand(-1, codes.shape[1], -1)
        hidden, _ = self.lstm(self.encode(torch.cat([codes, style], dim=-1)))
        return self.decode(hidden)


class MappingNetwork(nn.Module):
    def __init__(self, n_emotions: int, config: NedNetworkConfig):
        super().__init__()
        width = config.mapping_hidden
        self.shared = mlp(config.latent_dim, width, width, width, last_relu=True)
        self.heads = nn.ModuleList(mlp(width, width, config.style_dim, last_relu=False) for _ in range(n_emotions))

    def forward(self, z: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim), emotion (B,) -> style (B, S)."""
        shared = self.shared(z)
        return select(torch.stack([head(shared) for head in self.heads], dim=1), emotion)


class SequenceTrunk(nn.Module):
    """x (B, T, C) -> (B, out): per-frame MLP, 2-layer BiLSTM, per-frame MLP to `out`, mean over time."""

    def __init__(self, code_dim: int, out: int, config: NedNetworkConfig):
        super().__init__()
        first, second = config.trunk_hidden
        self.encode = mlp(code_dim, first, second, last_relu=True)
        self.lstm = nn.LSTM(second, config.trunk_lstm, num_layers=2, batch_first=True, bidirectional=True)
        self.decode = mlp(2 * config.trunk_lstm, *config.trunk_head, out, last_relu=False)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.encode(codes))
        return self.decode(hidden).mean(dim=1)


class StyleEncoder(nn.Module):
    def __init__(self, code_dim: int, config: NedNetworkConfig):
        super().__init__()
        self.trunk = SequenceTrunk(code_dim, config.style_dim, config)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, T, C) -> style (B, S)."""
        return self.trunk(codes)


class Discriminator(nn.Module):
    def __init__(self, code_dim: int, n_emotions: int, config: NedNetworkConfig):
        super().__init__()
        self.trunk = SequenceTrunk(code_dim, n_emotions, config)

    def forward(self, codes: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """codes (B, T, C), emotion (B,) -> real/fake score (B,) for that emotion (LSGAN: real 1, fake 0)."""
        return select(self.trunk(codes), emotion)


class NedNetworks(nn.Module):
    """The four networks for codes of `code_dim` and `n_emotions` emotions."""

    def __init__(self, code_dim: int, n_emotions: int, config: NedNetworkConfig | None = None,
                 relative_to_neutral: bool = False):
        super().__init__()
        config = config or NedNetworkConfig()
        self.config, self.code_dim, self.n_emotions = config, code_dim, n_emotions
        self.relative_to_neutral = relative_to_neutral
        self.generator = Generator(code_dim, config)
        self.mapping = MappingNetwork(n_emotions, config)
        self.style_encoder = StyleEncoder(code_dim, config)
        self.discriminator = Discriminator(code_dim, n_emotions, config)
        self.register_buffer("code_mean", torch.zeros(code_dim))
        self.register_buffer("code_scale", torch.ones(code_dim))
        self.apply(he_init)

    def set_code_statistics(self, codes: torch.Tensor, min_scale: float = 1e-3) -> None:
        """Standardise with the per-component mean and standard deviation of codes (N, T, C) (floored at
        min_scale)."""
        flat = codes.reshape(-1, self.code_dim).to(self.code_mean)
        self.code_mean.copy_(flat.mean(dim=0))
        self.code_scale.copy_(flat.std(dim=0).clamp_min(min_scale))

    def person_offset(self, neutral: torch.Tensor | None) -> torch.Tensor | float:
        """The (B, 1, C) neutral codes (B, C) of the windows' persons, for networks made relative_to_neutral (0
        for the others, which ignore `neutral`); ValueError when they need it and it is missing."""
        if not self.relative_to_neutral:
            return 0.0
        if neutral is None:
            raise ValueError("these networks read codes relative to the person's neutral code: give `neutral`")
        return neutral[..., None, :]

    def standardise(self, codes: torch.Tensor, neutral: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C) codes as they are (and (B, C) their persons' neutral codes) -> as the networks see them."""
        return (codes - self.person_offset(neutral) - self.code_mean) / self.code_scale

    def destandardise(self, codes: torch.Tensor, neutral: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C) codes as the networks see them -> as they are."""
        return codes * self.code_scale + self.code_mean + self.person_offset(neutral)

    def translate(self, codes: torch.Tensor, style: torch.Tensor, neutral: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """codes (B, T, C) as they are, style (B, S) (neutral (B, C)) -> the generator's codes (B, T, C) as they
        are."""
        return self.destandardise(self.generator(self.standardise(codes, neutral), style), neutral)

    def encode_style(self, codes: torch.Tensor, neutral: torch.Tensor | None = None) -> torch.Tensor:
        """codes (B, T, C) as they are (neutral (B, C)) -> style (B, S)."""
        return self.style_encoder(self.standardise(codes, neutral))


def he_init(module: nn.Module) -> None:
    """He (fan-in, ReLU gain) normal weights and zero biases for Linear layers."""
    if isinstance(module, nn.Linear):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(module.bias)
