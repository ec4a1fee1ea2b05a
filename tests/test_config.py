"""YAML configs: unknown keys and wrong types are one-line UserErrors; overrides go through the same checks."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ned_outlier.config import load_config, replace_fields
from ned_outlier.errors import UserError
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Inner:
    rate: float = 1.0
    sizes: tuple[int, int] = (1, 2)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_nested_values_and_int_for_float(tmp_path):
    config = load_config(write(tmp_path, "name: y\ninner:\n  rate: 3\n  sizes: [4, 5]\n"), Outer)
    assert config == Outer(name="y", inner=Inner(rate=3.0, sizes=(4, 5)), flag=False)


@pytest.mark.parametrize(
    "text, message",
    [
        ("nme: y\n", "unknown key 'nme'"),
        ("inner:\n  rte: 1\n", r"c.yaml.inner: unknown key 'rte' \(valid keys: rate, sizes\)"),
        ("inner:\n  rate: fast\n", "inner.rate: expected float"),
        ("flag: 1\n", "flag: expected bool"),
        ("name: [\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(UserError, match=message) as error:
        load_config(write(tmp_path, text), Outer)
    assert "\n" not in str(error.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", Outer)


def test_overrides_are_checked():
    assert replace_fields(Outer(), {"inner.rate": 2}).inner.rate == 2.0
    with pytest.raises(UserError, match="unknown key"):
        replace_fields(Outer(), {"inner.speed": 2})


def test_shipped_reconstruction_config_matches_defaults():
    """configs/reconstruct/default.yaml states the code's defaults, so reading it changes nothing."""
    assert load_config(REPO / "configs/reconstruct/default.yaml", ReconstructionConfig) == ReconstructionConfig()
