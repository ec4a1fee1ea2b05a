"""The two packages depend one way: ned_outlier (the editor, the NED trainer) never imports recognition, and an edit
loads no classifier."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLASSIFIER_LIBRARIES = {"recognition", "open_clip", "timm", "transformers"}
# what the default edit (mediapipe-au codes, warp) never uses; importing torchvision alone took seconds of the
# edit's start-up when the DECA encoder module imported it at its top
UNUSED_BY_AN_EDIT = CLASSIFIER_LIBRARIES | {"torchvision"}


def imported_modules(path: Path) -> set[str]:
    """The absolute modules that `import` / `from ... import` statements of a source file name (also in functions)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_the_scan_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("import os\n\ndef f():\n    from recognition.labels import EMOTIONS\n    import timm.models\n")
    assert imported_modules(source) == {"os", "recognition.labels", "timm.models"}


@pytest.mark.parametrize("path", sorted((REPO / "ned_outlier").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_of_ned_outlier_imports_recognition(path):
    bad = sorted(m for m in imported_modules(path) if m.split(".")[0] == "recognition")
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


@pytest.mark.slow
def test_an_edit_imports_no_classifier(smile_clip, smile_params, tmp_path):
    """scripts/edit.py run to the end on a real clip (its saved reconstruction): none of recognition, open_clip, timm,
    transformers, torchvision loaded."""
    probe = ("import atexit, runpy, sys\n"
             "atexit.register(lambda: print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & "
             f"set({sorted(UNUSED_BY_AN_EDIT)!r})), file=sys.stderr))\n"
             f"sys.argv = ['edit.py'] + sys.argv[1:]\n"
             f"runpy.run_path({str(REPO / 'scripts' / 'edit.py')!r}, run_name='__main__')\n")
    out = tmp_path / "edited.mp4"
    done = subprocess.run([sys.executable, "-c", probe, str(smile_clip), "--emotion", "sad", "--out", str(out),
                           "--params", str(smile_params), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file()
    assert "LOADED []" in done.stderr, done.stderr[-2000:]
