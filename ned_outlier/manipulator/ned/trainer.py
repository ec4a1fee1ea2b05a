"""Train NED's manipulator with accelerate (one CPU process, GPUs, or several processes over DDP).

    result = train_ned(load_ned_config("configs/ned/train_synthmead.yaml", ["train.epochs=2"]))

Each iteration follows NED's released code (manipulator/train.py): source windows x (label y, weight lambda) and
reference windows x_r (label y~, weight lambda_r) are drawn from two differently shuffled passes over the training
windows, latents z ~ N(0, I); the discriminator takes a latent-guided then a reference-guided step, then the
generator, mapping network and style encoder a latent-guided step and the generator alone a reference-guided one.
Adam (lr 1e-4, betas 0 / 0.99) per network; the learning rates decay linearly to 0 over the last `decay_epochs`.
With `data.lambdas` every loss term is multiplied by the windows' outlier weights (ned/objective.py); without it,
every window weighs 1 (plain NED).

In train.output_dir: model.safetensors (ned/checkpoint.py), checkpoints/last (resume state, replaced atomically;
running again resumes from it), tensorboard/ (losses, lambda statistics, generated sequences per emotion).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from ned_outlier.config import load_config, repo_path
from ned_outlier.data.mead import MeadSelection, scan_mead
from ned_outlier.data.ned_windows import (WindowSet, build_windows, read_lambda_table, reconstruct_clips,
                                          with_actor_neutral)
from ned_outlier.errors import UserError
from ned_outlier.manipulator.ned.averaging import AveragedNetworks
from ned_outlier.manipulator.ned.checkpoint import save_ned
from ned_outlier.manipulator.ned.networks import NedNetworkConfig, NedNetworks
from ned_outlier.manipulator.ned.objective import (LossWeights, Windows, discriminator_loss, generator_loss,
                                                   latent_target, reference_target)
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig
from ned_outlier.training_state import (Progress, check_schedule, finish_run, flat_config, resume_if_saved,
                                         save_resume_state)
from ned_outlier.data.sampling import EpochShuffle

LOG = logging.getLogger(__name__)
NED_EMOTIONS = ("neutral", "angry", "disgusted", "fear", "happy", "sad", "surprised")  # NED's head order


@dataclass(frozen=True)
class DataSection:
    """root: a MEAD-layout folder; cache: where the clips' reconstructions go (made once); train_actors /
    val_actors: the split (val may be empty); lambdas: scripts/score_outliers.py's windows.csv (null: every window
    weighs 1); standardise_codes: let the networks work on the codes standardised per component with the training
    windows' mean and deviation (kept in the checkpoint). Not in NED, whose DECA codes are near unit scale; the AU
    backend's components differ 20-fold in spread (AU28's deviation is 0.03, AU26's 0.66), which leaves the small
    ones out of the L1 cycle term and the discriminator's view. relative_to_neutral: the networks see each code
    minus its actor's mean neutral code (over the actor's neutral windows; every actor needs neutral clips), and the
    checkpoint says so, so that an edit subtracts the subject's neutral code and adds it back. Not in NED either:
    the AU backend's codes carry the person's resting face (on SynthMEAD the actors' mean neutral codes spread as
    much as all codes do), which DECA's expression codes largely leave to its shape code; the discriminator cannot
    tell a target expression from another person's resting face."""

    root: str = "data/MEAD"
    cache: str = "out/ned_params"
    train_actors: tuple[str, ...] = ("M003", "M009", "W029")
    val_actors: tuple[str, ...] = ("M023",)
    view: str = "front"
    levels: tuple[int, ...] = (3,)
    include_neutral: bool = True
    emotions: tuple[str, ...] = NED_EMOTIONS
    window: int = 10
    hop: int = 1
    lambdas: str | None = None
    standardise_codes: bool = False
    relative_to_neutral: bool = False
    reconstruct_config: str = "configs/reconstruct/default.yaml"

    def selection(self, actors: tuple[str, ...]) -> MeadSelection:
        return MeadSelection(actors, self.view, self.levels, self.include_neutral)


@dataclass(frozen=True)
class OptimSection:
    """NED's Adam settings; discriminator_lr: the discriminator's own rate (null: lr, as in NED; a higher one is the
    two-time-scale rule of Heusel et al. 2017)."""

    lr: float = 1e-4
    mapping_lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.99)
    discriminator_lr: float | None = None


@dataclass(frozen=True)
class TrainSection:
    """epochs (NED's niter 10), of which the last decay_epochs (niter_decay 10) decay the learning rates linearly
    to 0; checkpoint_every: also save the resume state every that many iterations (0: at epoch ends only);
    ema_beta: evaluate and save an exponential moving average of the weights (ned/averaging.py, StarGAN v2's 0.999)
    instead of the last ones; 0 (NED's released code): off."""

    output_dir: str = "runs/ned"
    epochs: int = 10
    decay_epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 0
    num_workers: int = 0
    ema_beta: float = 0.0

    def __post_init__(self) -> None:
        check_schedule(self.epochs, self.batch_size, self.decay_epochs)
        if not 0.0 <= self.ema_beta < 1.0:
            raise ValueError(f"train.ema_beta must lie in [0, 1), not {self.ema_beta}")


@dataclass(frozen=True)
class NedTrainingConfig:
    data: DataSection = field(default_factory=DataSection)
    model: NedNetworkConfig = field(default_factory=NedNetworkConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)


def load_ned_config(path: str | Path, overrides: list[str] | None = None) -> NedTrainingConfig:
    return load_config(path, NedTrainingConfig, overrides)


def load_windows(data: DataSection, actors: tuple[str, ...], progress: bool,
                 exclude: tuple[str, ...] = ()) -> WindowSet:
    """The windows of `actors`' clips (every actor but `exclude` when empty), reconstructed into data.cache first,
    once."""
    root = Path(data.root)
    clips = [clip for clip in scan_mead(root, data.selection(actors)) if clip.actor not in exclude]
    if not clips:
        raise UserError(f"no clips left in {root} once the validation actors {', '.join(exclude)} are taken out")
    reconstruction = load_config(repo_path(data.reconstruct_config), ReconstructionConfig)
    paths = reconstruct_clips(clips, root, Path(data.cache), reconstruction, progress)
    lambdas = read_lambda_table(data.lambdas) if data.lambdas else None
    windows = build_windows(clips, paths, root, data.emotions, data.window, data.hop, lambdas)
    if windows.schema.backend != reconstruction.backend:
        raise UserError(f"{data.cache} holds reconstructions of backend {windows.schema.backend}, but "
                        f"{data.reconstruct_config} asks for {reconstruction.backend}: give each backend its own "
                        "data.cache (or delete this one)")
    return windows


class NedObjective(nn.Module):
    """The networks behind one forward per optimisation step, as DDP needs: forward(step, ...) returns the step's
    weighted loss and its unweighted terms."""

    def __init__(self, nets: NedNetworks, mouth_dims: int, weights: LossWeights):
        super().__init__()
        self.nets, self.mouth_dims, self.weights = nets, mouth_dims, weights

    def forward(self, step: str, source: Windows, reference: Windows, z: torch.Tensor):
        nets = self.nets
        guided_by_latent = step.endswith("latent")
        if step.startswith("d"):
            with torch.no_grad():
                target = (latent_target(nets, source, z, reference.emotion) if guided_by_latent
                          else reference_target(nets, source, reference))
            return discriminator_loss(nets, source, target)
        target = (latent_target(nets, source, z, reference.emotion) if guided_by_latent
                  else reference_target(nets, source, reference))
        return generator_loss(nets, source, target, self.mouth_dims, self.weights)


@dataclass(frozen=True)
class NedTrainResult:
    """model_path; history: per epoch the means of every logged term (e.g. "g_latent/cycle", "lambda/mean"),
    "d", "g" (each network's two steps summed) and "step" (the iterations done by the epoch's end); checksum: the
    parameter sum on each process."""

    model_path: Path
    history: list[dict[str, float]]
    checksum: list[float]
    main_process: bool


def make_optimizers(nets: NedNetworks, optim: OptimSection) -> dict[str, torch.optim.Optimizer]:
    """NED's Adam per network (the mapping network with its own learning rate)."""
    lr = {"generator": optim.lr, "mapping": optim.mapping_lr, "style_encoder": optim.lr,
          "discriminator": optim.lr if optim.discriminator_lr is None else optim.discriminator_lr}
    return {name: torch.optim.Adam(getattr(nets, name).parameters(), lr=rate, betas=optim.betas)
            for name, rate in lr.items()}


STEPS = (("d_latent", ("discriminator",)), ("d_reference", ("discriminator",)),
         ("g_latent", ("generator", "mapping", "style_encoder")), ("g_reference", ("generator",)))


def iteration(accelerator: Accelerator, objective: nn.Module, optimizers: dict, source: Windows, reference: Windows,
              z: torch.Tensor) -> dict[str, float]:
    """NED's four steps (STEPS: which networks each one updates); returns every term as {"<step>/<term>": value}."""
    logs = {}
    for kind, update in STEPS:
        for optimizer in optimizers.values():
            optimizer.zero_grad()
        loss, parts = objective(kind, source, reference, z)
        accelerator.backward(loss)
        for name in update:
            optimizers[name].step()
        logs |= {f"{kind}/{name}": value for name, value in parts.items()} | {f"{kind}/loss": loss.item()}
    return logs


def decay_factor(epoch: int, epochs: int, decay_epochs: int) -> float:
    """NED's linear decay: the learning rate factor during 0-based `epoch`; it drops by 1 / decay_epochs after each
    of the last decay_epochs epochs (so 1 for all of a run without decay)."""
    if decay_epochs == 0:
        return 1.0
    return 1.0 - max(0, epoch - (epochs - decay_epochs)) / decay_epochs


def _windows_batch(codes, emotion, weight, use_weights: bool) -> Windows:
    return Windows(codes, emotion, weight if use_weights else None)


def train_ned(config: NedTrainingConfig, progress: bool = True,
              evaluate: Callable[[NedNetworks], dict[str, float]] | None = None) -> NedTrainResult:
    """Train (or resume) the run of `config`; see the module's docstring. `evaluate(nets)`, when given, runs on the
    main process at the end of every epoch (networks in eval mode, no gradients); its values, e.g.
    {"eval/target_accuracy": 0.8}, join that epoch's history and TensorBoard."""
    output = Path(config.train.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(log_with="tensorboard", project_dir=str(output),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    with accelerator.main_process_first():  # one process reconstructs; the others read its cache
        show = progress and accelerator.is_main_process
        windows = load_windows(config.data, config.data.train_actors, show, exclude=config.data.val_actors)
        val = load_windows(config.data, config.data.val_actors, show) if config.data.val_actors else None
    if config.data.relative_to_neutral:
        windows = with_actor_neutral(windows)
        val = with_actor_neutral(val) if val is not None else None
    set_seed(config.train.seed)  # after the data: reconstructing a clip draws random numbers, reading its cache none
    schema = windows.schema
    nets = NedNetworks(windows.codes.shape[2], len(config.data.emotions), config.model,
                       config.data.relative_to_neutral)
    if config.data.standardise_codes:
        nets.set_code_statistics(torch.from_numpy(windows.codes) - nets.person_offset(_neutral(windows)))
    objective = NedObjective(nets, windows.mouth_dims, config.loss)
    optimizers = make_optimizers(nets, config.optim)
    base_lr = {name: o.param_groups[0]["lr"] for name, o in optimizers.items()}
    with torch.no_grad():  # the networks' view of the codes (as they are unless standardise_codes / relative)
        codes = nets.standardise(torch.from_numpy(windows.codes), _neutral(windows))
    dataset = TensorDataset(codes, torch.from_numpy(windows.emotion),
                            torch.from_numpy(windows.weight))
    # Each loader draws its workers' base seed from its own generator, not torch's global one: the latents come
    # from that, and a resumed run (which starts its loaders again mid-epoch) must find it where the checkpoint did.
    loaders = [DataLoader(dataset, batch_size=config.train.batch_size, num_workers=config.train.num_workers,
                          sampler=EpochShuffle(len(dataset), config.train.seed + offset),
                          generator=torch.Generator().manual_seed(config.train.seed + offset)) for offset in (0, 1)]
    objective, *rest = accelerator.prepare(objective, *optimizers.values(), *loaders)
    optimizers = dict(zip(optimizers, rest[:4]))
    source_loader, reference_loader = rest[4:]
    trained = accelerator.unwrap_model(objective).nets
    averaged = AveragedNetworks(trained, config.train.ema_beta) if config.train.ema_beta else None
    judged = averaged.nets if averaged else trained  # what is evaluated, drawn and saved

    progress_state = Progress()
    accelerator.register_for_checkpointing(progress_state)
    if averaged:
        accelerator.register_for_checkpointing(averaged)
    checkpoints = output / "checkpoints"
    resumed = resume_if_saved(accelerator, checkpoints)
    if resumed:
        LOG.info("resuming from %s: epoch %d, step %d", resumed, progress_state.epoch, progress_state.step_in_epoch)
    accelerator.init_trackers("tensorboard", config=flat_config(config))
    use_weights = config.data.lambdas is not None
    latent_dim = config.model.latent_dim

    history = []
    for epoch in range(progress_state.epoch, config.train.epochs):
        factor = decay_factor(epoch, config.train.epochs, config.train.decay_epochs)
        for name, optimizer in optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = base_lr[name] * factor
        source_loader.set_epoch(epoch)
        reference_loader.set_epoch(epoch)
        skip = progress_state.step_in_epoch
        pairs = zip(accelerator.skip_first_batches(source_loader, skip) if skip else source_loader,
                    accelerator.skip_first_batches(reference_loader, skip) if skip else reference_loader)
        epoch_logs: list[dict] = []
        for (codes, emotion, weight), (ref_codes, ref_emotion, ref_weight) in tqdm(
                pairs, desc=f"epoch {epoch + 1}/{config.train.epochs}", total=len(source_loader), initial=skip,
                disable=not (progress and accelerator.is_local_main_process)):
            source = _windows_batch(codes, emotion, weight, use_weights)
            reference = _windows_batch(ref_codes, ref_emotion, ref_weight, use_weights)
            z = torch.randn(len(codes), latent_dim, device=codes.device)
            logs = iteration(accelerator, objective, optimizers, source, reference, z)
            if averaged:
                averaged.update(trained)
            logs |= {"lambda/mean": weight.mean().item(), "lambda/down_weighted": (weight < 1).float().mean().item()}
            epoch_logs.append(logs)
            progress_state.step_in_epoch += 1
            progress_state.global_step += 1
            if progress_state.global_step % config.train.log_every == 0:
                recent = epoch_logs[-config.train.log_every:]
                accelerator.log({key: float(np.mean([log[key] for log in recent])) for key in recent[0]},
                                step=progress_state.global_step)
            if config.train.checkpoint_every and progress_state.global_step % config.train.checkpoint_every == 0:
                save_resume_state(accelerator, checkpoints)
        progress_state.epoch, progress_state.step_in_epoch = epoch + 1, 0
        history.append(_epoch_means(accelerator, epoch_logs) | {"step": float(progress_state.global_step)})
        if val is not None:
            history[-1] |= validate(accelerator.unwrap_model(objective), val, config)
            accelerator.log({k: v for k, v in history[-1].items() if k.startswith("val/")},
                            step=progress_state.global_step)
        if evaluate is not None and accelerator.is_main_process:
            history[-1] |= _evaluated(evaluate, judged)
            accelerator.log({k: v for k, v in history[-1].items() if k.startswith("eval/")},
                            step=progress_state.global_step)
        if accelerator.is_main_process:
            LOG.info("epoch %d: D %.4f G %.4f", epoch + 1, history[-1]["d"], history[-1]["g"])
            _log_samples(accelerator, judged, windows, config, progress_state)
        save_resume_state(accelerator, checkpoints)

    del objective  # before finish_run: see there
    model_path = output / "model.safetensors"
    if accelerator.is_main_process:
        save_ned(judged, model_path, schema, config.data.emotions, dataclasses.asdict(config))
    checksums = finish_run(accelerator, trained)
    return NedTrainResult(model_path, history, checksums, accelerator.is_main_process)


@torch.no_grad()
def validate(objective: NedObjective, windows: WindowSet, config: NedTrainingConfig) -> dict[str, float]:
    """Mean unweighted loss terms of the four steps over the validation windows (latents from a fixed seed), as
    {"val/<step>/<term>": value}."""
    was_training = objective.training
    objective.eval()
    device = next(objective.parameters()).device
    generator = torch.Generator().manual_seed(config.train.seed)
    order = torch.randperm(len(windows), generator=generator)
    sums: dict[str, float] = {}
    size = config.train.batch_size
    for start in range(0, len(windows), size):
        pick, ref = torch.arange(start, min(start + size, len(windows))), order[start:start + size]
        as_windows = lambda i: Windows(  # noqa: E731
            objective.nets.standardise(torch.from_numpy(windows.codes[i.numpy()]).to(device),
                                       _neutral(windows, i.numpy(), device)),
            torch.from_numpy(windows.emotion[i.numpy()]).to(device))
        z = torch.randn(len(pick), config.model.latent_dim, generator=generator).to(device)
        for step in ("d_latent", "d_reference", "g_latent", "g_reference"):
            _, parts = objective(step, as_windows(pick), as_windows(ref[: len(pick)]), z)
            for name, value in parts.items():
                sums[f"val/{step}/{name}"] = sums.get(f"val/{step}/{name}", 0.0) + value * len(pick)
    objective.train(was_training)
    return {key: value / len(windows) for key, value in sums.items()}


def _neutral(windows: WindowSet, pick=slice(None), device=None) -> torch.Tensor | None:
    """The (n, C) neutral codes of windows[pick] (with_actor_neutral), or None when they have none."""
    return None if windows.neutral is None else torch.from_numpy(windows.neutral[pick]).to(device)


def _evaluated(evaluate: Callable[[NedNetworks], dict[str, float]], nets: NedNetworks) -> dict[str, float]:
    was_training = nets.training
    nets.eval()
    with torch.no_grad():
        values = evaluate(nets)
    nets.train(was_training)
    return values


def _epoch_means(accelerator: Accelerator, logs: list[dict]) -> dict[str, float]:
    """The epoch's mean of every logged value, averaged over the processes, plus "d" and "g": the summed losses of
    the discriminator's and the generator's two steps."""
    keys = sorted(logs[0]) if logs else []
    local = torch.tensor([[float(np.mean([log[key] for log in logs])) for key in keys]], device=accelerator.device)
    means = dict(zip(keys, accelerator.gather(local).mean(dim=0).tolist())) if keys else {}
    means["d"] = means.get("d_latent/loss", float("nan")) + means.get("d_reference/loss", float("nan"))
    means["g"] = means.get("g_latent/loss", float("nan")) + means.get("g_reference/loss", float("nan"))
    return means


@torch.no_grad()
def _log_samples(accelerator: Accelerator, nets: NedNetworks, windows: WindowSet, config: NedTrainingConfig,
                 progress: Progress) -> None:
    """A figure in TensorBoard: the first training window's expression codes and its translation to every emotion
    (fixed latent)."""
    from ned_outlier.manipulator.ned.plots import plot_translations

    was_training = nets.training
    nets.eval()
    device = next(nets.parameters()).device
    source = torch.from_numpy(windows.codes[:1]).to(device)
    z = torch.zeros(1, config.model.latent_dim, device=device)
    neutral = _neutral(windows, slice(0, 1), device)
    translated = {emotion: nets.translate(source, nets.mapping(z, torch.tensor([k], device=device)), neutral)[0]
                  .cpu().numpy() for k, emotion in enumerate(config.data.emotions)}
    nets.train(was_training)
    figure = plot_translations(windows.codes[0], translated, windows.schema)
    writer = accelerator.get_tracker("tensorboard", unwrap=True)
    writer.add_figure("samples/translations", figure, progress.global_step)
