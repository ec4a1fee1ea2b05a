"""The user's own model files (FLAME, DECA, EMOCA: licensed, never shipped or downloaded): found from a path or an
environment variable, and a one-line UserError saying where to give one and where it comes from when it is not."""

from __future__ import annotations

import os
from pathlib import Path

FLAME_REGISTRATION_URL = "https://flame.is.tue.mpg.de"  # DECA's and EMOCA's registrations need FLAME's too


def where_given(flag: str, config_key: str | None, env: str) -> str:
    """'give its path with --flag, the config key a.b, or the environment variable ENV'."""
    config = f", the config key {config_key}" if config_key else ""
    return f"give its path with {flag}{config}, or the environment variable {env}"


def resolve_file(path: str | os.PathLike | None, what: str, env: str, how: str, folder_ok: bool = False) -> Path:
    """`path`, else the environment variable `env`, as an existing file (or folder, with `folder_ok`); else a
    one-line UserError: no `what` given, or `what` <path> not found / a folder, followed by `how` (where the path
    is given, where the file comes from)."""
    from ned_outlier.errors import UserError

    if path is None or str(path) == "":
        path = os.environ.get(env) or None
        if path is None:
            raise UserError(f"no {what} given: {how}")
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{what} {path} not found: {how}")
    if path.is_dir() and not folder_ok:
        raise UserError(f"{what} {path} is a folder, not the file: {how}")
    return path
