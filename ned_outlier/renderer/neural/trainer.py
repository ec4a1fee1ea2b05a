"""Train the per-actor neural renderer with accelerate (one CPU process, GPUs, or several processes over DDP).

    result = train_renderer(load_renderer_config("configs/renderer/actor.yaml", ["data.video=actor.mp4"]))

Self-supervised on the actor's own video, as NED's renderer: the condition is rendered from each frame's fitted
mesh, the target is the real frame's crop. The conditioning's topology follows the reconstruction's backend
(renderer/neural/conditioning.py: MediaPipe's for mediapipe-au, FLAME's for flame-*, from data.flame_model and
data.landmark_embedding or FLAME_MODEL_PATH and FLAME_LANDMARK_EMBEDDING_PATH), read before any frame is cut or
reconstructed; the checkpoint records the schema, so it renders for that backend's meshes only. The first
`data.train_fraction` of the frames train; the rest are held out (their PSNR/SSIM is the renderer's score:
renderer/neural/evaluation.py). Each iteration: the generator rolls out `data.sequence_length` consecutive frames
(each from three conditions and the two frames it generated before), then the discriminators take a step on those
frames (NED's order: G, then D). Adam (NED: lr 2e-4, betas 0.5 / 0.999) per
side; the learning rate decays linearly to 0 over the last `decay_epochs`.

In train.output_dir: renderer.safetensors (renderer/neural/checkpoint.py), checkpoints/last (resume state, replaced
atomically; running again resumes from it), frames.npy (the crops, cut once), params.npz (the reconstruction, made
once unless data.params names one), tensorboard/ (losses and image grids real | condition | generated).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from torch.utils.data import DataLoader
from tqdm import tqdm

from ned_outlier.config import load_config, repo_path
from ned_outlier.errors import UserError
from ned_outlier.manipulator.ned.trainer import decay_factor
from ned_outlier.reconstruction.params import FaceParams, load_params_of
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct
from ned_outlier.renderer.neural.checkpoint import save_renderer
from ned_outlier.renderer.neural.conditioning import ConditioningTopology, backend_topology
from ned_outlier.renderer.neural.data import ActorFrames, SequenceDataset, actor_frames, split_frames
from ned_outlier.renderer.neural.losses import RendererLossConfig
from ned_outlier.renderer.neural.objective import RendererModelConfig, RendererNetworks, RendererObjective
from ned_outlier.training_state import (Progress, check_schedule, finish_run, flat_config, resume_if_saved,
                                         save_resume_state)
from ned_outlier.data.sampling import EpochShuffle

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSection:
    """video: the actor's footage; params: its saved reconstruction (null: reconstruct into output_dir/params.npz);
    train_fraction: the first part of the frames that trains (the rest is held out); sequence_length: frames per
    generator roll-out; source_crop_size: the crop size of the reconstruction's crop matrices (its crop.size);
    flame_model, landmark_embedding: the user's FLAME generic_model.pkl and DECA's landmark_embedding.npy, the
    conditioning's topology for a flame-* reconstruction (None: FLAME_MODEL_PATH, FLAME_LANDMARK_EMBEDDING_PATH)."""

    video: str = ""
    params: str | None = None
    face: str = "largest"
    train_fraction: float = 0.8
    sequence_length: int = 3
    source_crop_size: int = 256
    reconstruct_config: str = "configs/reconstruct/default.yaml"
    flame_model: str | None = None
    landmark_embedding: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.train_fraction <= 1.0 or self.sequence_length < 1:
            raise ValueError("train_fraction must be in (0, 1] and sequence_length >= 1")


@dataclass(frozen=True)
class OptimSection:
    """NED's renderer (Head2Head's options): lr 2e-4, betas (0.5, 0.999)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)


@dataclass(frozen=True)
class TrainSection:
    """epochs, of which the last decay_epochs decay the learning rate linearly to 0; checkpoint_every: also save the
    resume state every that many iterations (0: at epoch ends only); image_every: an image grid to TensorBoard every
    that many iterations."""

    output_dir: str = "runs/renderer"
    epochs: int = 10
    decay_epochs: int = 5
    batch_size: int = 1
    seed: int = 0
    log_every: int = 10
    image_every: int = 100
    checkpoint_every: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_schedule(self.epochs, self.batch_size, self.decay_epochs)


@dataclass(frozen=True)
class RendererTrainingConfig:
    data: DataSection = field(default_factory=DataSection)
    model: RendererModelConfig = field(default_factory=RendererModelConfig)
    loss: RendererLossConfig = field(default_factory=RendererLossConfig)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)


def load_renderer_config(path: str | Path, overrides: list[str] | None = None) -> RendererTrainingConfig:
    return load_config(path, RendererTrainingConfig, overrides)


def saved_params(config: RendererTrainingConfig) -> FaceParams | None:
    """The run's saved reconstruction: data.params, else output_dir/params.npz (None when neither: it is yet to be
    made). UserError without a video, or when either is of another video."""
    data, output = config.data, Path(config.train.output_dir)
    if not data.video:
        raise UserError("no actor video: pass --video PATH (or set data.video)")
    if data.params:
        return load_params_of(data.params, data.video, f"data.params {data.params}")
    if not (output / "params.npz").is_file():
        return None
    params = FaceParams.load(output / "params.npz")
    if Path(params.video.path).name != Path(data.video).name:
        raise UserError(f"{output} holds a run on {params.video.path}, not {data.video}: choose another --output-dir")
    return params


def reconstruction_config(config: RendererTrainingConfig) -> ReconstructionConfig:
    return load_config(repo_path(config.data.reconstruct_config), ReconstructionConfig)


def run_topology(config: RendererTrainingConfig, backend: str) -> ConditioningTopology:
    """The conditioning's topology for `backend`'s meshes, its files from the run's data section."""
    return backend_topology(backend, config.data.flame_model, config.data.landmark_embedding)


def load_actor(config: RendererTrainingConfig, progress: bool, topology: ConditioningTopology | None = None,
               params: FaceParams | None = None) -> tuple[FaceParams, ActorFrames]:
    """The actor's reconstruction (`params` when already loaded by `saved_params`; else the saved one, or made once
    into output_dir/params.npz) and crops. `topology` (None: the reconstruction backend's, `run_topology`, read
    before minutes of reconstruction) must fit the reconstruction's meshes."""
    params = saved_params(config) if params is None else params
    if params is None:
        reconstruction = reconstruction_config(config)
        topology = run_topology(config, reconstruction.backend) if topology is None else topology
        params = reconstruct(config.data.video, reconstruction, face=config.data.face, progress=progress)
        params.save(Path(config.train.output_dir) / "params.npz")
    topology = run_topology(config, params.schema.backend) if topology is None else topology
    topology.require_mesh(params.schema.n_vertices, f"the {params.schema.backend} reconstruction")
    frames = actor_frames(config.data.video, params, config.model.conditioning.size,
                          Path(config.train.output_dir) / "frames.npy", config.data.source_crop_size, progress)
    return params, frames


@dataclass(frozen=True)
class RendererTrainResult:
    """model_path; history: per epoch the means of every logged term ("g/<term>", "d/<term>", "g", "d"); checksum:
    the generator's parameter sum on each process."""

    model_path: Path
    history: list[dict[str, float]]
    checksum: list[float]
    main_process: bool


def train_renderer(config: RendererTrainingConfig, progress: bool = True) -> RendererTrainResult:
    """Train (or resume) the run of `config`; see the module's docstring."""
    output = Path(config.train.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(log_with="tensorboard", project_dir=str(output),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    set_seed(config.train.seed)
    saved = saved_params(config)
    # first: a missing FLAME or VGG19 file is reported before any work
    topology = run_topology(config, saved.schema.backend if saved else reconstruction_config(config).backend)
    nets = RendererNetworks(config.model, topology)
    objective = RendererObjective(nets, config.loss)
    with accelerator.main_process_first():  # one process reconstructs and crops; the others read its files
        params, frames = load_actor(config, progress and accelerator.is_main_process, topology, saved)
    training_frames, _ = split_frames(params.num_frames, config.data.train_fraction)
    dataset = SequenceDataset(frames, config.data.sequence_length, training_frames)
    generator_params = list(nets.generator.parameters())
    discriminator_params = list(nets.discriminator.parameters()) + list(nets.mouth_discriminator.parameters())
    optimizers = {"g": torch.optim.Adam(generator_params, lr=config.optim.lr, betas=config.optim.betas),
                  "d": torch.optim.Adam(discriminator_params, lr=config.optim.lr, betas=config.optim.betas)}
    loader = DataLoader(dataset, batch_size=config.train.batch_size, num_workers=config.train.num_workers,
                        sampler=EpochShuffle(len(dataset), config.train.seed), drop_last=len(dataset) >= 2)
    objective, optimizer_g, optimizer_d, loader = accelerator.prepare(objective, optimizers["g"], optimizers["d"],
                                                                      loader)
    optimizers = {"g": optimizer_g, "d": optimizer_d}

    state = Progress()
    accelerator.register_for_checkpointing(state)
    checkpoints = output / "checkpoints"
    resumed = resume_if_saved(accelerator, checkpoints)
    if resumed:
        LOG.info("resuming from %s: epoch %d, step %d", resumed, state.epoch, state.step_in_epoch)
    accelerator.init_trackers("tensorboard", config=flat_config(config))

    history = []
    for epoch in range(state.epoch, config.train.epochs):
        factor = decay_factor(epoch, config.train.epochs, config.train.decay_epochs)
        for optimizer in optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = config.optim.lr * factor
        loader.set_epoch(epoch)
        skip = state.step_in_epoch
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        epoch_logs: list[dict[str, float]] = []
        for images, vertices in tqdm(batches, desc=f"epoch {epoch + 1}/{config.train.epochs}", total=len(loader),
                                     initial=skip, disable=not (progress and accelerator.is_local_main_process)):
            logs, fakes = iteration(accelerator, objective, optimizers, images, vertices)
            epoch_logs.append(logs)
            state.step_in_epoch += 1
            state.global_step += 1
            if state.global_step % config.train.log_every == 0:
                recent = epoch_logs[-config.train.log_every:]
                accelerator.log({key: float(np.mean([log[key] for log in recent])) for key in recent[0]},
                                step=state.global_step)
            if accelerator.is_main_process and state.global_step % config.train.image_every == 0:
                _log_images(accelerator, accelerator.unwrap_model(objective).nets, images, vertices, fakes,
                            state.global_step)
            if config.train.checkpoint_every and state.global_step % config.train.checkpoint_every == 0:
                save_resume_state(accelerator, checkpoints)
        state.epoch, state.step_in_epoch = epoch + 1, 0
        history.append(_epoch_means(accelerator, epoch_logs))
        if accelerator.is_main_process:
            LOG.info("epoch %d: G %.4f D %.4f", epoch + 1, history[-1]["g"], history[-1]["d"])
        save_resume_state(accelerator, checkpoints)

    generator = accelerator.unwrap_model(objective).nets.generator
    del objective  # before finish_run: see there
    model_path = output / "renderer.safetensors"
    if accelerator.is_main_process:
        save_renderer(generator, model_path, config.model, params.schema, config.data.source_crop_size,
                      flat_config(config))
    checksums = finish_run(accelerator, generator)
    return RendererTrainResult(model_path, history, checksums, accelerator.is_main_process)


def iteration(accelerator: Accelerator, objective: RendererObjective, optimizers: dict, images: torch.Tensor,
              vertices: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    """A generator step then a discriminator step on the generated frames; ({"g/<term>": ..., "d/<term>": ...,
    "g": ..., "d": ...}, generated frames (B, L, 3, S, S))."""
    logs = {}
    fakes = None
    with torch.no_grad():
        conditions = accelerator.unwrap_model(objective).nets.condition_sequence(vertices)
    for step in ("g", "d"):
        for optimizer in optimizers.values():
            optimizer.zero_grad()
        loss, terms, fakes = objective(step, images, conditions, vertices, fakes)
        fakes = fakes.detach()  # the discriminator's step must not reach back into the generator's graph
        accelerator.backward(loss)
        optimizers[step].step()
        logs |= {f"{step}/{name}": value for name, value in terms.items()} | {step: loss.item()}
    return logs, fakes


def _epoch_means(accelerator: Accelerator, logs: list[dict[str, float]]) -> dict[str, float]:
    """The epoch's mean of every logged value, averaged over the processes."""
    keys = sorted(logs[0]) if logs else []
    local = torch.tensor([[float(np.mean([log[key] for log in logs])) for key in keys]], device=accelerator.device)
    return dict(zip(keys, accelerator.gather(local).mean(dim=0).tolist())) if keys else {}


@torch.no_grad()
def _log_images(accelerator: Accelerator, nets: RendererNetworks, images: torch.Tensor, vertices: torch.Tensor,
                fakes: torch.Tensor, step: int) -> None:
    """TensorBoard grid of the batch's first sequence: real frames | NMFC condition | generated frames."""
    from torchvision.utils import make_grid

    condition = nets.conditions(vertices[0, 2:])[:, :3]
    rows = torch.cat([images[0], condition.to(images.device), fakes[0]])
    grid = make_grid((rows.clamp(-1, 1) + 1) / 2, nrow=len(images[0]))
    accelerator.get_tracker("tensorboard", unwrap=True).add_image("samples/real_condition_generated", grid, step)
