"""What every accelerate training loop of the project shares: the progress counter saved with the resume state,
the atomic checkpoints/last, and TensorBoard-friendly flattening of a config."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelerate import Accelerator


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
