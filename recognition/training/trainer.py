"""The training loop of every recognition family, on accelerate (CPU, one GPU, or DDP via `accelerate launch`).

    result = train(load_training_config("configs/recognition/cnn-efficientnet-b0.yaml"))

Every model optimises its own `training_loss(images, targets)` (cross-entropy, RMFER's L_pre, caption-CLIP's
label-aware contrastive loss, Exp-CLIP's symmetric InfoNCE); RMFER adds lambda2 * L_ACL on unlabeled face tracks from
`acl.start_epoch` on. In train.output_dir:
    checkpoints/last/      accelerate state (model, optimizer, RNGs, progress), replaced atomically; a run started
                           again with the same output_dir resumes from it
    model.safetensors      the trained model (recognition.checkpoint), loadable by create_model(name, pretrained=...)
    tensorboard logs       train/loss, val/war, val/uar (accelerate's TensorBoard tracker)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ned_outlier.data.sampling import EpochShuffle
from ned_outlier.errors import UserError
from ned_outlier.training_state import Progress, finish_run, flat_config, resume_if_saved, save_resume_state
from recognition.checkpoint import save_checkpoint
from recognition.losses import ACLGroups
from recognition.metrics import confusion_matrix, uar, war
from recognition.registry import create_model
from recognition.training.config import ACLSection, OptimSection, TrainingConfig
from recognition.training.data import LabelledFaces, LLMTargetFaces, read_source

LOG = logging.getLogger(__name__)
INITIALISATION_OPTIONS = ("pretrained_backbone",)
"""Factory options that only initialise weights: left out of the trained checkpoint, which replaces those weights."""
logging.getLogger("accelerate").setLevel(logging.WARNING)  # its per-file save/load lines drown the progress


class TrainingObjective(nn.Module):
    """Holds the model so that DDP wraps one forward that returns the whole loss (gradients then sync correctly).
    acl_groups: the layout of every face-track batch (ACLBatchSampler.layout), None without an ACL stage."""

    def __init__(self, model: nn.Module, acl: ACLSection, acl_groups: ACLGroups | None = None):
        super().__init__()
        self.model, self.acl, self.acl_groups = model, acl, acl_groups

    def forward(self, images: torch.Tensor, targets: torch.Tensor, tracks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Scalar loss of a batch: images (N, 3, S, S), targets (N,) class indices or (N, 4096) LLM embeddings;
        tracks = [crops (M, 3, S, S), video (M,), person (M,), frame (M,)] in acl_groups' layout adds
        acl.weight * L_ACL."""
        loss = self.model.training_loss(images, targets)
        if tracks is not None:
            acl = self.acl
            loss = loss + acl.weight * self.model.acl_loss(*tracks, groups=self.acl_groups, tau=acl.tau,
                                                           gamma=acl.gamma, positive_window=acl.positive_window,
                                                           negative_gap=acl.negative_gap, variant=acl.variant)
        return loss


@dataclass(frozen=True)
class TrainResult:
    """model_path: the trained model file; history: per-epoch mean training loss; val: last WAR/UAR (or empty);
    checksum: sum of all parameters on each process (equal when the ranks are in sync); main_process: whether this
    process is the one that reports."""

    model_path: Path
    history: list[float]
    val: dict[str, float]
    checksum: list[float]
    main_process: bool


def build_optimizer(model: nn.Module, optim: OptimSection) -> torch.optim.Optimizer:
    """SGD / Adam / AdamW over the trainable parameters; per-group learning rates from model.parameter_groups when
    optim.text_lr is set (caption-CLIP)."""
    if optim.text_lr is not None:
        if not hasattr(model, "parameter_groups"):
            raise UserError(f"optim.text_lr is set but {type(model).__name__} has no text encoder")
        groups = model.parameter_groups(optim.lr, optim.text_lr)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": optim.lr}]
    if optim.name == "sgd":
        return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
    kind = torch.optim.Adam if optim.name == "adam" else torch.optim.AdamW
    return kind(groups, lr=optim.lr, weight_decay=optim.weight_decay)


def _training_set(config: TrainingConfig, model: nn.Module):
    data = config.data
    if data.llm_targets:
        return LLMTargetFaces(data.llm_targets, model.preprocess, data.hflip, config.train.seed)
    if not data.train.root:
        raise UserError("data.train.root is required (or data.llm_targets for Exp-CLIP)")
    return LabelledFaces(read_source(data.train, model.labels), model.labels, model.preprocess, data.hflip,
                         data.augment, config.train.seed)


def _track_loader(config: TrainingConfig, model: nn.Module) -> tuple[DataLoader | None, ACLGroups | None]:
    """RMFER's unlabeled face-track batches (ACLBatchSampler) and their group layout, or (None, None) when the run
    has no ACL stage."""
    if not config.data.face_tracks:
        return None, None
    if not hasattr(model, "acl_loss"):
        raise UserError(f"data.face_tracks is set but {config.model.name} has no ACL stage (only rmfer-* models)")
    from recognition.data.face_tracks import ACLBatchSampler, FaceTrackDataset, read_face_tracks

    acl = config.acl
    crops = read_face_tracks(config.data.face_tracks)
    sampler = ACLBatchSampler(crops, acl.batch_size, acl.positive_window, acl.negative_gap, seed=config.train.seed,
                              positives=acl.positives, negatives=acl.negatives)
    loader = DataLoader(FaceTrackDataset(crops, model.preprocess), batch_sampler=sampler,
                        num_workers=config.data.num_workers, generator=torch.Generator().manual_seed(config.train.seed))
    return loader, sampler.layout


def _endless(loader: DataLoader) -> Iterator:
    """The loader's batches, pass after pass (each pass draws afresh; itertools.cycle would replay stored tensors)."""
    while True:
        yield from loader


@torch.no_grad()
def evaluate(accelerator: Accelerator, model: nn.Module, loader: DataLoader) -> dict[str, float]:
    """WAR and UAR of `model` over a prepared labelled loader (all processes' predictions gathered)."""
    was_training = model.training
    model.eval()
    predicted, true = [], []
    for images, labels in loader:
        guesses = model(images).argmax(dim=1)
        guesses, labels = accelerator.gather_for_metrics((guesses, labels))
        predicted.append(guesses.cpu())
        true.append(labels.cpu())
    model.train(was_training)
    matrix = confusion_matrix(torch.cat(true).numpy(), torch.cat(predicted).numpy(), len(model.labels))
    return {"val/war": war(matrix), "val/uar": uar(matrix)}


def train(config: TrainingConfig) -> TrainResult:
    """Train `config.model` on `config.data`; resumes from output_dir/checkpoints/last when it exists."""
    output = Path(config.train.output_dir)
    accelerator = Accelerator(log_with="tensorboard", project_dir=str(output))
    set_seed(config.train.seed)
    model = create_model(config.model.name, pretrained=config.model.pretrained, **config.model.options)
    train_set = _training_set(config, model)
    # the loader's own generator for its workers' seed: torch's global one (dropout) must stay where a checkpoint
    # saves it when a resumed run starts the loader again mid-epoch
    loader = DataLoader(train_set, batch_size=config.train.batch_size, sampler=EpochShuffle(len(train_set), config.train.seed),
                        drop_last=config.train.drop_last, num_workers=config.data.num_workers,
                        generator=torch.Generator().manual_seed(config.train.seed))
    if len(loader) == 0:
        raise UserError(f"{len(train_set)} training samples make no batch of {config.train.batch_size} with drop_last")
    val_loader = None
    if config.data.val.root:
        val_set = LabelledFaces(read_source(config.data.val, model.labels), model.labels, model.preprocess)
        val_loader = DataLoader(val_set, batch_size=config.train.batch_size, num_workers=config.data.num_workers)
    tracks, acl_groups = _track_loader(config, model)
    objective = TrainingObjective(model, config.acl, acl_groups)
    optimizer = build_optimizer(model, config.optim)
    objective, optimizer, loader = accelerator.prepare(objective, optimizer, loader)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    if tracks is not None:
        tracks = accelerator.prepare(tracks)

    progress = Progress()
    accelerator.register_for_checkpointing(progress)
    checkpoints = output / "checkpoints"
    resumed = resume_if_saved(accelerator, checkpoints)
    if resumed and accelerator.is_main_process:
        LOG.info("resuming from %s: epoch %d, step %d", resumed, progress.epoch, progress.step_in_epoch)
    accelerator.init_trackers("tensorboard", config=flat_config(config))

    history, metrics = [], {}
    track_batches = _endless(tracks) if tracks is not None else None
    for epoch in range(progress.epoch, config.train.epochs):
        loader.set_epoch(epoch)
        train_set.set_epoch(epoch)  # its random draws (EpochDraws); accelerate's set_epoch does not always reach it
        if tracks is not None:
            tracks.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, progress.step_in_epoch) if progress.step_in_epoch else loader
        acl_on = track_batches is not None and epoch >= config.acl.start_epoch
        losses = []
        for images, targets in tqdm(batches, desc=f"epoch {epoch + 1}/{config.train.epochs}",
                                    initial=progress.step_in_epoch, total=len(loader),
                                    disable=not accelerator.is_local_main_process):
            loss = objective(images, targets, next(track_batches) if acl_on else None)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            progress.step_in_epoch += 1
            progress.global_step += 1
            if progress.global_step % config.train.log_every == 0:
                accelerator.log({"train/loss": float(np.mean(losses[-config.train.log_every:]))}, step=progress.global_step)
            if config.train.checkpoint_every and progress.global_step % config.train.checkpoint_every == 0:
                save_resume_state(accelerator, checkpoints)
        progress.epoch, progress.step_in_epoch = epoch + 1, 0
        epoch_loss = torch.tensor([float(np.mean(losses)) if losses else float("nan")], device=accelerator.device)
        history.append(accelerator.gather(epoch_loss).mean().item())  # the mean over all processes
        if val_loader is not None:
            metrics = evaluate(accelerator, accelerator.unwrap_model(objective).model, val_loader)
            accelerator.log(metrics, step=progress.global_step)
        if accelerator.is_main_process:
            LOG.info("epoch %d: loss %.4f %s", epoch + 1, history[-1],
                     " ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        save_resume_state(accelerator, checkpoints)

    trained = accelerator.unwrap_model(objective).model
    del objective  # before finish_run: see there
    model_path = output / "model.safetensors"
    if accelerator.is_main_process:
        options = {k: v for k, v in config.model.options.items() if k not in INITIALISATION_OPTIONS}
        save_checkpoint(trained, model_path, config.model.name, options, dataclasses.asdict(config))
    checksums = finish_run(accelerator, trained)
    return TrainResult(model_path, history, metrics, checksums, accelerator.is_main_process)
