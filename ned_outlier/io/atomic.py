"""Write output files all at once or not at all, and never over one of the inputs; output folders that a failed run
leaves empty are removed; a command's named outputs are claimed (locked, not overwritten unless asked, the temporary
files of killed runs removed) before its work starts."""

from __future__ import annotations

import errno
import fcntl
import glob
import os
import re
import secrets
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from ned_outlier.errors import UserError

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # what atomic_output turns into a UserError


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary path beside `path`; rename it onto `path` only if the block exits normally.

    The temporary name is `.<name>.partial-<pid>-<random><suffix>`: same directory (so the final rename is atomic),
    the writing process's id (so a later run can tell the file of a killed run: remove_stale_partials) and the same
    suffix (so ffmpeg picks the container from it). The file is created empty, which checks up front that the
    directory is writable; on an exception it is removed and nothing appears at `path`. A full disk or quota
    (OSError ENOSPC / EDQUOT) raised in the block becomes a one-line UserError naming `path`.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    temp = path.with_name(f".{path.name}.partial-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
    try:
        temp.open("xb").close()  # "x": never clobber; plain open() keeps the user's umask (mkstemp would give 0600)
    except OSError as error:
        raise UserError(f"cannot write into directory {path.parent}: {error.strerror}") from None
    try:
        yield temp
        try:
            os.replace(temp, path)
        except OSError as error:
            raise UserError(f"cannot write {path}: {error.strerror}") from None
    except OSError as error:
        temp.unlink(missing_ok=True)
        if error.errno in FULL_DISK:
            raise UserError(f"cannot write {path}: {error.strerror}; free some space and run again") from None
        raise
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_outputs(paths: Iterable[str | os.PathLike]) -> Iterator[list[Path]]:
    """atomic_output for a set of files that belong together: yields their temporary paths, in order; only when the
    block exits normally are they renamed onto their paths, one after the other, once all are written. On an
    exception all of them are removed and none of `paths` changes; a full disk is a UserError naming the set."""
    paths = [Path(path) for path in paths]
    with ExitStack() as stack:
        temps = [stack.enter_context(atomic_output(path)) for path in paths]
        try:
            yield temps
        except OSError as error:
            if error.errno in FULL_DISK:
                raise UserError(f"cannot write {', '.join(map(str, paths))}: {error.strerror}; free some space and "
                                "run again") from None
            raise


@contextmanager
def output_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Create the folder `path` (and its missing parents) for a command's outputs, UserError when it cannot be; if
    the block raises, the folders created here are removed again while still empty, so a failed run leaves no
    empty output folder behind. A folder that existed before is never removed."""
    path = Path(path)
    created = [folder for folder in (path, *path.parents) if not folder.exists()]  # the deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create output folder {path}: {error.strerror}") from None
    try:
        yield path
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:  # not empty (something was written), or gone
                break
        raise


def _process_alive(pid: int) -> bool:
    """Whether a process `pid` runs now (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_stale_partials(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that atomic_output left beside `path` for it in runs whose process is gone (a
    kill -9, a power cut); those of running processes are kept. Returns the removed files."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.partial-(\d+)-[0-9a-f]{{8}}{re.escape(path.suffix)}")
    removed = []
    for temp in path.parent.glob(f".{glob.escape(path.name)}.partial-*"):
        match = pattern.fullmatch(temp.name)
        if match and not _process_alive(int(match.group(1))):
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of output `path` while a run writes it: `.<name>.lock` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the output name `path` for the block; UserError at once when another run holds it.

    The lock is fcntl.flock on `lock_path(path)`, which holds the holder's process id (for the message). The
    kernel releases it when its process ends in any way, so a lock of a killed run is never in the way: its file is
    taken over and its id overwritten. The file is removed on leaving the block (a run that opened the old file
    meanwhile sees it gone and takes a fresh one)."""
    lock = lock_path(path)
    while True:
        try:
            handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise UserError(f"cannot write into directory {lock.parent}: {error.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(handle)
            raise UserError(f"{path} is being written by another run (process {holder}, lock {lock}); wait for it "
                            f"to finish or choose another output") from None
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(handle).st_ino:
            break
        os.close(handle)  # the holder removed the file after we opened it: lock the new one
    try:
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(handle)


@contextmanager
def claim_outputs(paths: Iterable[str | os.PathLike | None], overwrite: bool = False) -> Iterator[None]:
    """Claim a command's output files (None entries are skipped) for the block, before its work starts: lock each
    (output_lock: a second run writing the same output fails at once), then UserError if one exists already unless
    `overwrite` ("pass --overwrite to replace it"), and remove the temporary files that killed runs left for them
    (remove_stale_partials). The folders must exist."""
    paths = [Path(path) for path in paths if path is not None]
    if len({path.resolve() for path in paths}) < len(paths):
        raise UserError(f"one file is given for two outputs: {', '.join(map(str, paths))}")
    with ExitStack() as locks:
        for path in paths:
            locks.enter_context(output_lock(path))
        for path in paths:
            if path.exists() and not overwrite:
                raise UserError(f"{path} exists; pass --overwrite to replace it")
        for path in paths:
            remove_stale_partials(path)
        yield


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # sees through hard links and symlinks
    return a.resolve() == b.resolve()


def ensure_not_input(output: str | os.PathLike, *inputs: str | os.PathLike) -> None:
    """UserError if `output` is the same file as any of `inputs` (writing it would destroy that input)."""
    for source in inputs:
        if _same_file(Path(output), Path(source)):
            raise UserError(f"output {output} is the same file as input {source}; choose another output path")
