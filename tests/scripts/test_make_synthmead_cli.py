"""scripts/make_synthmead.py --overwrite deletes a SynthMEAD set only: any other folder is refused with one line."""

from dataclasses import fields

import pytest

from ned_outlier.data import synthmead

from cli_checks import assert_one_line_error, load_script, run


@pytest.fixture(scope="module")
def script():
    return load_script("make_synthmead")


@pytest.fixture
def built(monkeypatch):
    """build_synthmead replaced by a stub that records the folder it was given (this is about --overwrite)."""
    calls = []

    def build(config, out, progress=True):
        calls.append(sorted(p.name for p in out.iterdir()) if out.exists() else None)
        return synthmead.SynthSet([], [])

    monkeypatch.setattr(synthmead, "build_synthmead", build)
    return calls


def fake_set(root):
    """The layout of a SynthMEAD set: truth.csv with its columns, an actor folder and the twins."""
    (root / "S001" / "video" / "front" / "happy" / "level_3").mkdir(parents=True)
    (root / "S001" / "video" / "front" / "happy" / "level_3" / "000.mp4").write_bytes(b"clip")
    (root / "twins" / "S001").mkdir(parents=True)
    (root / "truth.csv").write_text(",".join(f.name for f in fields(synthmead.ClipTruth)) + "\n")
    return root


def test_overwrite_replaces_a_synthmead_set(script, capfd, tmp_path, built):
    out = fake_set(tmp_path / "set")
    code, err = run(script, capfd, "--out", out, "--overwrite", "--quiet")
    assert code == 0, err
    assert built == [None]  # the old set was deleted before the build


@pytest.mark.parametrize("make, fragments", [
    (lambda root: (root / "thesis.tex").write_text("years of work"), ["holds no readable truth.csv", "not deleted"]),
    (lambda root: (fake_set(root) / "thesis.tex").write_text("years of work"),
     ["holds thesis.tex beside a SynthMEAD set", "not deleted"]),
    (lambda root: (fake_set(root) / "S001" / "notes.txt").write_text("mine"), ["holds S001 beside a SynthMEAD set"]),
    (lambda root: (root / "truth.csv").write_text("name,score\nx,1\n"), ["is not a SynthMEAD truth table"]),
], ids=["no-truth", "other-file", "other-file-in-an-actor", "other-truth-csv"])
def test_overwrite_never_deletes_a_folder_of_something_else(script, capfd, tmp_path, built, make, fragments):
    out = tmp_path / "mine"
    out.mkdir()
    make(out)
    before = sorted(out.rglob("*"))
    code, err = run(script, capfd, "--out", out, "--overwrite", "--quiet")
    assert_one_line_error(code, err, str(out), *fragments)
    assert sorted(out.rglob("*")) == before and built == []
