"""The training config of scripts/train_recognition.py (configs/recognition/<model>.yaml), read strictly: an unknown
or mistyped key is a one-line error.

    config = load_training_config("configs/recognition/cnn-efficientnet-b0.yaml", ["train.epochs=2"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


from ned_outlier.config import load_config
from ned_outlier.errors import UserError


@dataclass(frozen=True)
class ModelSection:
    """name: a registry name (recognition.list_models()); options: its factory's keyword arguments;
    pretrained: passed to the factory (a backbone's ImageNet weights file, a CLIP tag is an option)."""

    name: str = ""
    options: dict = field(default_factory=dict)
    pretrained: str | None = None


@dataclass(frozen=True)
class DataSource:
    """A labelled image set: `layout` is a recognition.data.readers layout, `root` its folder, `split` the split to
    keep ("" keeps all; e.g. "train" for RAF-DB's list file). An empty root means no such set."""

    layout: str = "folders"
    root: str = ""
    split: str = ""


@dataclass(frozen=True)
class Augmentation:
    """Random jitter of each training image, drawn independently per image, each uniform in [-x, x]: rotation
    (degrees), scale (fraction: 0.1 = 0.9x to 1.1x), shift (fraction of the side, per axis), brightness (added to
    the preprocessed image, in units of its own standard deviation) and contrast (fraction: the image's deviation
    from its mean is scaled by 1 + u). All 0: none (the papers' recipes use flips only)."""

    rotation: float = 0.0
    scale: float = 0.0
    shift: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0


@dataclass(frozen=True)
class DataSection:
    """train/val: labelled sets. llm_targets (Exp-CLIP): a recognition.data.llm_targets file whose image list is the
    training set. face_tracks (RMFER ACL): a folder of scripts/extract_face_tracks.py. hflip: random horizontal
    flips in training; augment: more random jitter (Augmentation). num_workers: DataLoader worker processes."""

    train: DataSource = field(default_factory=DataSource)
    val: DataSource = field(default_factory=DataSource)
    llm_targets: str | None = None
    face_tracks: str | None = None
    hflip: bool = True
    augment: Augmentation = field(default_factory=Augmentation)
    num_workers: int = 0


@dataclass(frozen=True)
class OptimSection:
    """name: sgd, adam or adamw; lr for all parameters, or for the image side when text_lr is set (caption-CLIP's
    text encoder gets text_lr)."""

    name: str = "adamw"
    lr: float = 1e-4
    text_lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in ("sgd", "adam", "adamw"):
            raise ValueError(f"optim.name must be sgd, adam or adamw, got {self.name!r}")


@dataclass(frozen=True)
class ACLSection:
    """RMFER's second stage: from epoch `start_epoch` (0-based) on, each step adds weight (lambda2) * L_ACL on a batch
    of `batch_size` unlabeled track crops, made of anchors each with `positives` and `negatives` crops
    (recognition.data.face_tracks.ACLBatchSampler); tau, gamma and the frame windows are the loss's; variant is
    "paper" (the paper's per-positive mean) or "released-code" (the released code's one log of the summed positives,
    recognition.losses.ACL_RELEASED_CODE)."""

    start_epoch: int = 1
    weight: float = 1.0
    batch_size: int = 101
    positives: int = 50
    negatives: int = 50
    tau: float = 0.1
    gamma: float = 0.1
    positive_window: int = 5
    negative_gap: int = 30
    variant: str = "paper"

    def __post_init__(self) -> None:
        from recognition.losses import ACL_VARIANTS

        if not 0.0 < self.gamma <= 1.0 or self.tau <= 0.0:
            raise ValueError(f"acl.gamma must be in (0, 1] and acl.tau above 0, got {self.gamma}, {self.tau}")
        if self.variant not in ACL_VARIANTS:
            raise ValueError(f"acl.variant must be one of {', '.join(ACL_VARIANTS)}, got {self.variant!r}")


@dataclass(frozen=True)
class TrainSection:
    """output_dir holds checkpoints/last (resume state), model.safetensors (the trained model) and TensorBoard logs;
    checkpoint_every: also save the resume state every that many steps (0: at the end of each epoch only)."""

    output_dir: str = "runs/recognition"
    epochs: int = 1
    batch_size: int = 32
    drop_last: bool = False
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("train.epochs and train.batch_size must be at least 1")


@dataclass(frozen=True)
class TrainingConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    acl: ACLSection = field(default_factory=ACLSection)
    train: TrainSection = field(default_factory=TrainSection)


def load_training_config(path: str | Path, overrides: list[str] | None = None) -> TrainingConfig:
    """The config at `path` with dotted KEY=VALUE overrides applied; UserError on a bad key or value."""
    config = load_config(path, TrainingConfig, overrides)
    if not config.model.name:
        raise UserError(f"{path}: model.name is required (one of recognition.list_models())")
    return config
