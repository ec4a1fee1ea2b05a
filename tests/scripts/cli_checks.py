"""Shared checks of the command-line scripts' tests: run a script's main in-process, expect one-line errors."""

import importlib.util
from pathlib import Path

from ned_outlier.cli import run_cli

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str):
    """scripts/<name>.py as a module (its `main` runs in this process, which is faster than a subprocess)."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(script, capfd, *argv):
    """(exit code, stderr) of `script.main(argv)` run the way the command line runs it."""
    code = run_cli(script.main, [str(a) for a in argv])
    return code, capfd.readouterr().err


def assert_one_line_error(code, err, *fragments):
    """Exit code 2, no traceback, exactly one `error:` line containing every fragment."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def run_with_output(script, capfd, *argv):
    """(exit code, stdout, stderr) of `script.main(argv)` run the way the command line runs it."""
    code = run_cli(script.main, [str(a) for a in argv])
    captured = capfd.readouterr()
    return code, captured.out, captured.err
