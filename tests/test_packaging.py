"""A non-editable install (a wheel) finds the default configs without a checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROBE = """
import ned_outlier
from ned_outlier.config import repo_path
from ned_outlier.pipeline import load_edit_config
print(ned_outlier.__file__)
print(repo_path("configs/reconstruct/default.yaml"))
print(sorted(load_edit_config().facs.emotions))
"""


@pytest.mark.slow
def test_a_wheel_carries_the_configs_and_finds_them_installed(tmp_path):
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    source = tmp_path / "source"  # a copy: an in-tree build would leave build/ and *.egg-info in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "out", "runs", "build", "*.egg-info",
                                                                "__pycache__", ".pytest_cache"))
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(source)],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("ned_outlier/configs/")}
    in_checkout = {f"ned_outlier/{path.relative_to(REPO).as_posix()}" for path in (REPO / "configs").rglob("*.yaml")}
    assert shipped == in_checkout
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=elsewhere, env={"PYTHONPATH": str(site)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    package, config, emotions = done.stdout.splitlines()
    assert package == str(site / "ned_outlier" / "__init__.py")  # the installed copy, not the checkout
    assert config == str(site / "ned_outlier" / "configs" / "reconstruct" / "default.yaml")
    assert "happy" in emotions
