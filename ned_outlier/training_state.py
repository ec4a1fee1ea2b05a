"""What every accelerate training loop of the project shares: the progress counter saved with the resume state,
the atomic checkpoints/last and its loading without unpickling code, the end of a run (checksums, teardown) and
TensorBoard-friendly flattening of a config."""

from __future__ import annotations

import dataclasses
import gc
import logging
import pickle
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from accelerate import Accelerator
from torch.nn.parallel import DistributedDataParallel

from ned_outlier.errors import UserError

LOG = logging.getLogger(__name__)
LEFTOVER_DDP_WARNING = "a DDP wrapper is still referenced at the end of training; the process may hang on exit"


@dataclass
class Progress:
    """Where training stands; registered with accelerate so that it is saved and restored with the resume state."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0

    def state_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.step_in_epoch, self.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]


def check_schedule(epochs: int, batch_size: int, decay_epochs: int = 0) -> None:
    """ValueError unless epochs and batch_size are at least 1 and decay_epochs lies within [0, epochs]."""
    if epochs < 1 or batch_size < 1 or not 0 <= decay_epochs <= epochs:
        raise ValueError("epochs and batch_size must be >= 1 and decay_epochs within [0, epochs]")


def save_resume_state(accelerator: Accelerator, checkpoints: Path) -> None:
    """accelerator.save_state into checkpoints/last, atomically: written beside it, then renamed over it."""
    partial, last, old = checkpoints / ".last.partial", checkpoints / "last", checkpoints / ".last.old"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if last.exists():
            last.rename(old)
        partial.rename(last)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def saved_resume_state(checkpoints: Path) -> Path | None:
    """The folder save_resume_state last completed under `checkpoints`: `last`, or `.last.old` when the run was
    killed between save_resume_state's two renames (the new state not yet in place, the previous one set aside);
    None before the first save."""
    for folder in (checkpoints / "last", checkpoints / ".last.old"):
        if folder.is_dir():
            return folder
    return None


def resume_if_saved(accelerator: Accelerator, checkpoints: Path) -> Path | None:
    """load_resume_state from saved_resume_state(checkpoints) when there is one; the folder loaded, or None."""
    folder = saved_resume_state(checkpoints)
    if folder is not None:
        load_resume_state(accelerator, folder)
    return folder


def load_resume_state(accelerator: Accelerator, folder: Path) -> None:
    """accelerator.load_state(folder) (a save_resume_state folder) without unpickling code; UserError, before any of
    it is loaded, for a file that holds more than tensors, numbers and arrays.

    accelerate reads its pickles with torch.load(weights_only=True), but for the objects registered with
    register_for_checkpointing (custom_checkpoint_<i>.pkl: the Progress, NED's averaged networks) it passes
    weights_only=False: a crafted file in a run folder would run code on resume. Here those are read with
    weights_only=True too (accelerate's own list of allowed numpy types), by swapping accelerate's loader of them
    for the duration of the call; this process's random-state file, which accelerate skips without a word when it
    cannot read it, is checked first, and so are the custom states, so that a refused file stops the run before
    anything is loaded."""
    folder = Path(folder)
    states = {path.name: _safe_load(path, folder) for path in sorted(folder.glob("custom_checkpoint_*.pkl"))}
    random_states = folder / f"random_states_{accelerator.process_index}.pkl"
    if random_states.exists():
        _safe_load(random_states, folder)

    def load_custom_state(obj: Any, path: str, index: int = 0) -> None:
        obj.load_state_dict(states[f"custom_checkpoint_{index}.pkl"])

    with _replaced_custom_state_loader(load_custom_state):
        try:
            accelerator.load_state(str(folder))
        except pickle.UnpicklingError as error:  # its optimizer or scheduler state
            raise UserError(_refusal(folder, error)) from None


def _safe_load(path: Path, folder: Path) -> Any:
    """torch.load(path, weights_only=True) with accelerate's allowed numpy types; UserError when refused."""
    from accelerate.utils import load

    try:
        return load(path, map_location="cpu")
    except pickle.UnpicklingError as error:
        raise UserError(_refusal(folder, error, path)) from None


def _refusal(folder: Path, error: Exception, path: Path | None = None) -> str:
    """The one line for a file of the resume state that torch.load(weights_only=True) refused."""
    what = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), "not a weights-only pickle")
    return (f"{path or folder}: not loaded: a resume state holds only tensors, numbers and arrays, and this does "
            f"not ({what}); a pickle can run code, so resume only run folders you made, or delete {folder} to "
            "start the run afresh")


@contextmanager
def _replaced_custom_state_loader(loader) -> Iterator[None]:
    """accelerate.accelerator.load_custom_state (what Accelerator.load_state calls for each registered object)
    replaced by `loader` for the block."""
    import accelerate.accelerator as module

    original = module.load_custom_state  # AttributeError if accelerate renames it: never a silent unsafe load
    module.load_custom_state = loader
    try:
        yield
    finally:
        module.load_custom_state = original


def finish_run(accelerator: Accelerator, trained: torch.nn.Module) -> list[float]:
    """End a run on every process: the sum of `trained`'s parameters on each process (equal when the ranks stayed in
    sync), then the trackers closed and the process group destroyed. The caller drops its own references to the
    prepared (DDP-wrapped) model first.

    The order matters. torch's gloo backend hangs now and then at the end of a run if a DDP wrapper outlives the
    process group's Python handle: the wrapper's C++ Reducer then drops the group last, and the group's destructor
    joins gloo's worker threads while holding the GIL, which a worker may still need to free the tensors of the last
    collective (seen here as a hung rank in ~ProcessGroupGloo, under load; pytorch/pytorch#56297). Released first,
    the wrappers leave the group to destroy_process_group, whose Python handle gives up the GIL while it is
    destroyed."""
    checksum = sum(p.detach().double().sum() for p in trained.parameters()).reshape(1).float()
    checksums = accelerator.gather(checksum.to(accelerator.device)).cpu().tolist()
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    gc.collect()
    if accelerator.num_processes > 1 and any(issubclass(type(o), DistributedDataParallel) for o in gc.get_objects()):
        LOG.warning(LEFTOVER_DDP_WARNING)
    accelerator.end_training()
    return checksums


def flat_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"train.epochs": 2, ...} with TensorBoard-friendly values (others as strings); `options`
    mappings stay whole."""
    items = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    flat = {}
    for key, value in items.items():
        if isinstance(value, dict) and value and key != "options":
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat
