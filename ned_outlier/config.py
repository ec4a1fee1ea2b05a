"""YAML configs read into frozen dataclasses, with unknown or mistyped keys rejected in one clear line.

    cfg = load_config("configs/reconstruct/default.yaml", ReconstructionConfig)
    cfg = replace_fields(cfg, {"tracker.detect_every": 1})   # command-line overrides, same checks
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ned_outlier.errors import UserError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Build dataclass `cls` from `data`; nested dataclass fields come from nested mappings."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of keys to values, got {type(data).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (valid keys: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            kwargs[name] = from_dict(kind, value, f"{where}.{name}")
        else:
            kwargs[name] = _check_type(value, kind, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise UserError(f"{where}: {error}") from None


def _check_type(value: Any, kind: Any, where: str) -> Any:
    """Accept `value` for annotation `kind` (ints for floats; lists for tuples), else a UserError."""
    origin = typing.get_origin(kind)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for option in typing.get_args(kind):
            try:
                return _check_type(value, option, where)
            except UserError:
                continue
        raise UserError(f"{where}: {value!r} is not a valid {kind}")
    plain = origin or kind
    if kind is type(None):
        if value is None:
            return None
        raise UserError(f"{where}: expected null, got {value!r}")
    if isinstance(plain, type) and not isinstance(value, plain) or (plain is not bool and isinstance(value, bool)):
        raise UserError(f"{where}: expected {getattr(plain, '__name__', plain)}, got {value!r}")
    return value


REPO = Path(__file__).resolve().parent.parent
SHIPPED = Path(__file__).resolve().parent
"""Where a non-editable install keeps its copy of the checkout's configs/ (setup.py copies it into the package)."""


def repo_path(path: str | Path) -> Path:
    """A config's path: absolute as given; a relative one (e.g. "configs/reconstruct/default.yaml") from the
    repository root of a checkout, or from the copy of configs/ that an installed package carries; UserError when
    neither has it."""
    path = Path(path)
    if path.is_absolute():
        return path
    for root in (REPO, SHIPPED):
        if (root / path).exists():
            return root / path
    raise UserError(f"config {path} not found in {REPO} nor in the installed package ({SHIPPED}): pass the "
                    "file's full path (--config or the config key naming it)")


def load_config(path: str | Path, cls: type[T], overrides: list[str] | None = None) -> T:
    """Read YAML file `path` into dataclass `cls`, then apply dotted KEY=VALUE `overrides` (command-line --set)."""
    if overrides:
        return replace_fields(load_config(path, cls), parse_overrides(overrides))
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return from_dict(cls, data, str(path))


def replace_fields(config: T, overrides: dict[str, Any]) -> T:
    """Return `config` with dotted-path overrides applied, e.g. {"tracker.detect_every": 1}."""
    data = dataclasses.asdict(config)
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return from_dict(type(config), data, "override")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """["train.epochs=2", "model.options={hidden: 64}"] -> {"train.epochs": 2, ...}; values are YAML."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r} is not KEY=VALUE (e.g. train.epochs=2)")
        overrides[key.strip()] = _yaml_value(value)
    return overrides


def _yaml_value(text: str) -> Any:
    """YAML value of `text`, except that 1e-5 is a float (YAML 1.1 reads it as a string)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
