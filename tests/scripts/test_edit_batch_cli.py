"""scripts/edit.py on many inputs: folders and globs, --out-dir, --jobs, finished outputs skipped (a killed batch
resumes), a summary with every failure's reason, and accelerate's split between processes."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ned_outlier.assets import asset_path
from ned_outlier.batch import Outcome, expand_inputs, summary
from ned_outlier.errors import UserError

from cli_checks import assert_one_line_error, load_script, run, run_with_output
from factories import launch_two_cpu_processes

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "edit.py"


@pytest.fixture(scope="module")
def script():
    return load_script("edit")


@pytest.fixture
def photos(tmp_path):
    """A folder of three face photos (the astronaut, the group photo, the astronaut again under another name)."""
    from skimage import data
    from ned_outlier.io.image import write_image

    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "astronaut.png", data.astronaut())
    shutil.copy(asset_path("multi_face_image"), folder / "group.jpg")
    shutil.copy(folder / "astronaut.png", folder / "twin.png")
    return folder


def test_inputs_expand_from_files_folders_and_globs(tmp_path):
    for name in ("b.mp4", "a.JPG", "notes.txt", "c.webm"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.mp4").write_bytes(b"")
    assert expand_inputs([tmp_path]) == [tmp_path / n for n in ("a.JPG", "b.mp4", "c.webm")]  # not the subfolder
    assert expand_inputs([str(tmp_path / "*.mp4"), tmp_path / "b.mp4", tmp_path / "sub"]) == [
        tmp_path / "b.mp4", tmp_path / "sub" / "d.mp4"]  # duplicates dropped, order kept
    assert expand_inputs([tmp_path / "missing.mp4"]) == [tmp_path / "missing.mp4"]  # the edit itself says so
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: a folder without videos or photos"):
        expand_inputs([tmp_path / "empty"])
    with pytest.raises(UserError, match=r"\*.mov: no video or photo matches"):
        expand_inputs([str(tmp_path / "*.mov")])


def test_the_summary_counts_and_gives_each_reason():
    text = summary([Outcome("a.mp4", "edited", "wrote a_sad.mp4"), Outcome("b.mp4", "skipped", "b_sad.mp4 exists"),
                    Outcome("c.mp4", "failed", "no face found in 10 frames")])
    assert text.splitlines() == ["edited 1, skipped 1, failed 1", "  skipped: b.mp4: b_sad.mp4 exists",
                                 "  failed: c.mp4: no face found in 10 frames"]


def test_each_input_is_given_every_option_of_the_batch(script):
    """A batch runs this script once per input: a new option that input_options forgot would fail here."""
    argv = ["x.mp4", "y.mp4", "--emotion", "fear", "--intensity", "0.35", "--mouth", "edit", "--face", "all",
            "--seed", "7", "--preview", "--manipulator", "ned", "--checkpoint", "m.safetensors", "--renderer",
            "neural", "--checkpoint", "r.safetensors", "--config", "e.yaml", "--reconstruct-config", "r.yaml",
            "--out-dir", "o", "--jobs", "3", "--overwrite", "--quiet"]
    batch = script.parse_args(argv)
    one = script.parse_args(["x.mp4", *script.input_options(batch)])
    per_batch = {"video", "out_dir", "jobs", "overwrite", "quiet"}  # set per input, or the batch's own
    assert {k: v for k, v in vars(one).items() if k not in per_batch} == \
        {k: v for k, v in vars(batch).items() if k not in per_batch}
    reference = script.parse_args(["x.mp4", "y.mp4", "--reference", "r.mp4"])
    assert script.parse_args(["x.mp4", *script.input_options(reference)]).reference == Path("r.mp4")


@pytest.mark.slow
def test_a_folder_batch_edits_skips_and_reports_failures(script, capfd, photos, tmp_path):
    (photos / "broken.png").write_bytes(b"not a picture")
    out = tmp_path / "out"
    code, stdout, err = run_with_output(script, capfd, photos, "--emotion", "sad", "--out-dir", out, "--jobs", "2")
    assert_one_line_error(code, err, "1 of 4 inputs failed")
    assert "edited 3, skipped 0, failed 1" in stdout
    assert f"  failed: {photos / 'broken.png'}: not a readable image" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["astronaut_sad.png", "group_sad.jpg", "twin_sad.png"]
    made = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (photos / "broken.png").unlink()
    code, stdout, err = run_with_output(script, capfd, photos, "--emotion", "sad", "--out-dir", out)
    assert code == 0, err
    assert "edited 0, skipped 3, failed 0" in stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == made  # nothing written again
    code, stdout, err = run_with_output(script, capfd, photos / "twin.png", photos / "group.jpg", "--emotion", "sad",
                                        "--out-dir", out, "--overwrite")
    assert code == 0 and "edited 2, skipped 0, failed 0" in stdout, err


@pytest.mark.slow
def test_a_killed_batch_resumes_where_it_stopped(photos, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), str(photos), "--emotion", "happy", "--out-dir", str(out)]
    batch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while not (out / "astronaut_happy.png").exists():
        assert time.time() < deadline and batch.poll() is None, "the first output never appeared"
        time.sleep(0.1)
    os.killpg(batch.pid, signal.SIGKILL)  # the batch and the edit it is running
    batch.wait()
    assert not (out / "twin_happy.png").exists()
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    skipped = int(done.stdout.split("skipped ")[1].split(",")[0])
    assert skipped >= 1 and f"edited {3 - skipped}, skipped {skipped}, failed 0" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["astronaut_happy.png", "group_happy.jpg", "twin_happy.png"]


@pytest.mark.slow
def test_accelerate_splits_the_inputs_between_processes(photos, tmp_path):
    out = tmp_path / "out"
    done = launch_two_cpu_processes("edit.py", photos, "--emotion", "angry", "--out-dir", out)
    shares = [line for line in done.stdout.splitlines() if line.endswith("at a time")]
    assert sorted(shares) == ["1 inputs (0 done already), 1 at a time", "2 inputs (0 done already), 1 at a time"]
    assert done.stdout.count("edited: ") == 3  # each input by exactly one process
    assert sorted(p.name for p in out.iterdir()) == ["astronaut_angry.png", "group_angry.jpg", "twin_angry.png"]


def test_batch_only_and_one_file_options_are_checked_first(script, capfd, photos, tmp_path):
    for argv, fragments in ((["--out", tmp_path / "x.mp4"], ["--out names one file", "--out-dir"]),
                            (["--save-params", tmp_path / "p.npz"], ["--save-params names one file"]),
                            (["--jobs", "0"], ["--jobs must be >= 1"])):
        code, err = run(script, capfd, photos, "--emotion", "sad", *argv)
        assert_one_line_error(code, err, *fragments)
    code, err = run(script, capfd, photos / "group.jpg", "--emotion", "sad", "--out", tmp_path / "a.jpg",
                    "--out-dir", tmp_path)
    assert_one_line_error(code, err, "not both")
    (tmp_path / "b").mkdir()
    shutil.copy(photos / "group.jpg", tmp_path / "b" / "group.jpg")
    code, err = run(script, capfd, photos / "group.jpg", tmp_path / "b" / "group.jpg", "--emotion", "sad",
                    "--out-dir", tmp_path / "o")
    assert_one_line_error(code, err, "would both be edited into", "group_sad.jpg")
