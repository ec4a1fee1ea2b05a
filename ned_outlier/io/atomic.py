"""Write output files all at once or not at all, and never over one of the inputs; output folders that a failed run
leaves empty are removed."""

from __future__ import annotations

import errno
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ned_outlier.errors import UserError

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # what atomic_output turns into a UserError


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary path beside `path`; rename it onto `path` only if the block exits normally.

    The temporary name is `.<name>.partial-<random><suffix>`: same directory (so the final rename is atomic) and
    same suffix (so ffmpeg picks the container from it). The file is created empty, which checks up front that
    the directory is writable; on an exception it is removed and nothing appears at `path`. A full disk or quota
    (OSError ENOSPC / EDQUOT) raised in the block becomes a one-line UserError naming `path`.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    temp = path.with_name(f".{path.name}.partial-{secrets.token_hex(4)}{path.suffix}")
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


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # sees through hard links and symlinks
    return a.resolve() == b.resolve()


def ensure_not_input(output: str | os.PathLike, *inputs: str | os.PathLike) -> None:
    """UserError if `output` is the same file as any of `inputs` (writing it would destroy that input)."""
    for source in inputs:
        if _same_file(Path(output), Path(source)):
            raise UserError(f"output {output} is the same file as input {source}; choose another output path")
