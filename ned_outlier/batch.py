"""Many inputs for one command: folders and globs expanded, the work split between processes, a summary at the end.

    inputs = expand_inputs(["clips/", "more/*.mp4", "photo.jpg"])    # sorted media files, UserError if none
    mine = this_process_share(inputs)            # under `accelerate launch`: accelerate's split, else all of them
    outcomes = run_commands([[sys.executable, "scripts/edit.py", str(p), ...] for p in mine], jobs=2)
    print(summary(outcomes))

Each input is its own command (its own process, when jobs > 1), so one failing input never stops the others and
its one-line `error:` is kept as the reason.
"""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ned_outlier.errors import UserError
from ned_outlier.io.image import is_image

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
GLOB_CHARACTERS = set("*?[")


def is_media(path: Path) -> bool:
    """Whether `path` names a video (VIDEO_SUFFIXES) or a photo (ned_outlier.io.image.IMAGE_SUFFIXES), any case."""
    return path.suffix.lower() in VIDEO_SUFFIXES or is_image(path)


def expand_inputs(items: Sequence[str | os.PathLike]) -> list[Path]:
    """The media files named by `items`: files as given, a folder's videos and photos (not its subfolders), a glob's
    matches (for patterns the shell left alone, e.g. quoted); in the order given, each folder and glob sorted,
    duplicates dropped. UserError for a name that is none of these, or a folder or glob without media."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            media = sorted(p for p in path.iterdir() if p.is_file() and is_media(p))
            if not media:
                raise UserError(f"{path}: a folder without videos or photos ({', '.join(sorted(VIDEO_SUFFIXES))} "
                                "or images)")
            found += media
        elif not path.exists() and GLOB_CHARACTERS & set(str(item)):
            media = sorted(Path(p) for p in glob.glob(str(item)) if Path(p).is_file() and is_media(Path(p)))
            if not media:
                raise UserError(f"{item}: no video or photo matches")
            found += media
        else:
            found.append(path)  # checked by the command that reads it (missing, not a video: its own error)
    return list(dict.fromkeys(found))


def this_process_share(items: list) -> list:
    """The items this process works on: all of them, or under `accelerate launch` with several processes
    (WORLD_SIZE > 1) accelerate's own split (PartialState.split_between_processes: contiguous shares, the first
    processes one more when they do not divide evenly), so that every item is done by exactly one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return items
    from accelerate import PartialState

    state = PartialState(cpu=True)  # gloo on any machine: the processes only share out the items
    with state.split_between_processes(items) as mine:
        share = list(mine)
    state.destroy_process_group()  # the processes work apart from here on: nothing is left to tear down at exit
    return share


@dataclass(frozen=True)
class Outcome:
    """What became of one input: status "edited", "skipped" or "failed", and why (the output, or the error)."""

    item: str
    status: str
    reason: str


def run_commands(commands: Sequence[tuple[str, list[str]]], jobs: int = 1, threads: int | None = None,
                 on_done=None) -> list[Outcome]:
    """Run (item, argv) commands, `jobs` at a time, each in its own process with `threads` torch/OpenMP threads
    (default: the cores shared between the jobs); an Outcome per command, in the given order: "edited" with its
    last stdout line when it exits 0, else "failed" with its `error:` line (or its last stderr line). `on_done`
    (Outcome) is called as each finishes (a progress line)."""
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def run(command: tuple[str, list[str]]) -> Outcome:
        item, argv = command
        done = subprocess.run(argv, capture_output=True, text=True, env=environment)
        if done.returncode == 0:
            outcome = Outcome(item, "edited", _last_line(done.stdout))
        else:
            errors = [line[len("error: "):] for line in done.stderr.splitlines() if line.startswith("error: ")]
            reason = errors[-1] if errors else _last_line(done.stderr) or f"exit code {done.returncode}"
            outcome = Outcome(item, "failed", reason.removeprefix(f"{item}: "))  # the item is named already
        if on_done is not None:
            on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run, commands))


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def summary(outcomes: Sequence[Outcome]) -> str:
    """`edited N, skipped N, failed N` and a line for each skipped or failed input with its reason."""
    counts = {status: sum(o.status == status for o in outcomes) for status in ("edited", "skipped", "failed")}
    lines = [", ".join(f"{status} {count}" for status, count in counts.items())]
    lines += [f"  {o.status}: {o.item}: {o.reason}" for o in outcomes if o.status != "edited"]
    return "\n".join(lines)
