"""Datasets of the training loop: labelled faces (class indices) and Exp-CLIP's faces with LLM targets, plus an
epoch-seeded shuffling sampler so that a resumed run sees the same order as an uninterrupted one.

Each item is (image (3, S, S) float32 from the model's `preprocess`, target): target = class index (int) or the
image's LLM embedding (4096,) float32.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ned_outlier.errors import UserError
from recognition.data.llm_targets import read_llm_targets
from recognition.data.readers import Sample, read_dataset
from recognition.training.config import Augmentation, DataSource

LOG = logging.getLogger(__name__)
Preprocess = Callable[[np.ndarray], torch.Tensor]


def read_source(source: DataSource, labels: Sequence[str]) -> list[Sample]:
    """The samples of `source` whose label the model has (others, e.g. contempt for a 7-class model, are dropped
    with a log line); UserError when none is left."""
    samples = [s for s in read_dataset(source.layout, source.root) if not source.split or s.split == source.split]
    kept = [s for s in samples if s.label in labels]
    if len(kept) < len(samples):
        LOG.info("%s: dropped %d samples whose label the model does not have", source.root, len(samples) - len(kept))
    if not kept:
        raise UserError(f"no usable samples in {source.root} (layout {source.layout}, split {source.split!r})")
    return kept


def _uniform(bound: float, generator: torch.Generator | None = None) -> float:
    """A draw from U(-bound, bound) (from `generator`, else torch's global RNG)."""
    return float((torch.rand((), generator=generator) * 2 - 1) * bound)


def jitter(image: torch.Tensor, augment: Augmentation, generator: torch.Generator | None = None) -> torch.Tensor:
    """(C, S, S) image rotated, scaled and shifted about its centre (bilinear; borders replicated) and its brightness
    and contrast changed, by draws within `augment`'s bounds (from `generator`, else torch's global RNG); the image
    itself when every bound is 0."""
    draw = lambda bound: _uniform(bound, generator)  # noqa: E731
    if any((augment.rotation, augment.scale, augment.shift)):
        angle = math.radians(draw(augment.rotation))
        zoom = 1 + draw(augment.scale)
        shift_x, shift_y = draw(augment.shift) * 2, draw(augment.shift) * 2  # in [-1, 1] grid units
        # output pixel p samples the input at A p + t: the inverse of rotating by `angle` and zooming by `zoom`
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        theta = torch.tensor([[cos, sin, -shift_x], [-sin, cos, -shift_y]], dtype=image.dtype)[None]
        grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
        image = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    if augment.contrast:
        mean = image.mean()
        image = mean + (image - mean) * (1 + draw(augment.contrast))
    if augment.brightness:
        image = image + draw(augment.brightness) * image.std()
    return image


def _augment(image: torch.Tensor, hflip: bool, augment: Augmentation | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Random horizontal flip of a (3, S, S) tensor with probability 0.5, then `jitter`."""
    image = image.flip(-1) if hflip and bool(torch.rand((), generator=generator) < 0.5) else image
    return jitter(image, augment, generator) if augment is not None else image


class EpochDraws:
    """The random draws of a dataset's sample i in an epoch come from a generator seeded by (seed, epoch, i), not
    from torch's global RNG, so they do not depend on when a loader fetches the sample (accelerate's fetches one
    batch ahead, which a mid-epoch checkpoint would otherwise save past) nor on the worker. The trainer calls
    set_epoch at the start of every epoch."""

    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def draws(self, i: int) -> torch.Generator:
        state = np.random.SeedSequence([self.seed, self.epoch, i]).generate_state(2, np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class LabelledFaces(EpochDraws, Dataset):
    """Samples -> (image (3, S, S), class index in `labels`), flipped and jittered at random when asked (draws
    seeded by `seed`, the epoch and the sample: EpochDraws)."""

    def __init__(self, samples: Sequence[Sample], labels: Sequence[str], preprocess: Preprocess, hflip: bool = False,
                 augment: Augmentation | None = None, seed: int = 0):
        self.samples, self.preprocess, self.hflip, self.augment = list(samples), preprocess, hflip, augment
        self.index = {label: i for i, label in enumerate(labels)}
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[i]
        image = _augment(self.preprocess(sample.image()), self.hflip, self.augment, self.draws(i))
        return image, self.index[sample.label]


class LLMTargetFaces(EpochDraws, Dataset):
    """An Exp-CLIP targets file -> (image (3, S, S), LLM embedding (4096,)); relative image paths are relative to
    the file's folder."""

    def __init__(self, targets_file: str | Path, preprocess: Preprocess, hflip: bool = False, seed: int = 0):
        images, self.embeddings = read_llm_targets(targets_file)
        folder = Path(targets_file).parent
        self.paths = [Path(p) if Path(p).is_absolute() else folder / p for p in images]
        missing = [p for p in self.paths if not p.is_file()]
        if missing:
            raise UserError(f"{targets_file}: {len(missing)} listed images are missing, e.g. {missing[0]}")
        self.preprocess, self.hflip, self.seed = preprocess, hflip, seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = _augment(self.preprocess(Sample("", path=self.paths[i]).image()), self.hflip, generator=self.draws(i))
        return image, self.embeddings[i]
