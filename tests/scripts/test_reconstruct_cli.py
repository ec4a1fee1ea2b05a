"""scripts/reconstruct.py as a user runs it: outputs on a real clip, and a one-line error for each bad input."""

import csv
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ned_outlier.assets import asset_path
from ned_outlier.io.video import VideoReader
from ned_outlier.reconstruction.params import FaceParams

from cli_checks import assert_one_line_error, load_script, run, run_with_output
from factories import face_clip, saved_params_of

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "reconstruct.py"


@pytest.fixture(scope="module")
def script():
    return load_script("reconstruct")


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory, ffmpeg):
    """The first 36 frames of the Pexels clip, with its audio."""
    out = tmp_path_factory.mktemp("clip") / "short.mp4"
    return ffmpeg(out, "-i", str(asset_path("pexels_video")), "-frames:v", "36", "-c:v", "libx264", "-c:a", "aac")


def test_writes_params_csv_and_preview(script, capfd, short_clip, tmp_path):
    code, err = run(script, capfd, short_clip, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    params = FaceParams.load(tmp_path / "out" / "params.npz")
    assert params.num_frames == 36 and params.face_found.all()
    rows = list(csv.DictReader(open(tmp_path / "out" / "params.csv")))
    assert len(rows) == 36 and {"AU12", "AU26", "pitch", "yaw", "roll"} <= set(rows[0])
    assert float(rows[0]["AU26"]) == pytest.approx(float(params.mouth[0, params.schema.mouth_names.index("AU26")]),
                                                   abs=1e-4)
    preview = VideoReader(tmp_path / "out" / "preview.mp4")
    source = VideoReader(short_clip).info
    assert (preview.info.width, preview.info.height, preview.info.fps) == (source.width, source.height, source.fps)
    assert preview.info.has_audio
    frames = list(preview)
    assert len(frames) == 36
    original = next(iter(VideoReader(short_clip)))
    assert np.abs(frames[0].astype(int) - original).mean() > 0.5  # the mesh is drawn


def test_entry_point_prints_no_traceback(tmp_path):
    """The real command line, in a fresh interpreter."""
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "missing.mp4"), "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert_one_line_error(result.returncode, result.stderr, "missing.mp4", "no such file")


def test_help_explains_every_flag():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--out", "--config", "--face", "--detect-every", "--smooth", "--no-preview"):
        assert flag in result.stdout


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda d, ff: d / "missing.mp4", ["no such file"]),
        (lambda d, ff: (d / "notes.mp4").write_text("not a video") and d / "notes.mp4", ["not a readable media file"]),
        (lambda d, ff: ff(d / "sound.m4a", "-f", "lavfi", "-i", "sine", "-t", "1"), ["has no video stream"]),
        (
            lambda d, ff: ff(d / "empty.mp4", "-f", "lavfi", "-i", "testsrc", "-frames:v", "0",
                             "-movflags", "frag_keyframe+empty_moov"),
            ["contains no video frames"],
        ),
    ],
    ids=["missing", "text-file", "audio-only", "zero-frames"],
)
def test_bad_files(script, capfd, tmp_path, ffmpeg, make, fragments):
    code, err = run(script, capfd, make(tmp_path, ffmpeg), "--out", tmp_path / "out" / "deeper", "--quiet")
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "out").exists()  # the folders it made are removed again


def test_truncated_file(script, capfd, short_clip, tmp_path):
    data = short_clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    code, err = run(script, capfd, cut, "--out", tmp_path / "out", "--quiet")
    assert_one_line_error(code, err, "cut.mp4")


def test_no_face_anywhere(script, capfd, tmp_path):
    code, err = run(script, capfd, asset_path("no_face_video"), "--out", tmp_path, "--quiet")
    assert_one_line_error(code, err, "no face found")
    assert tmp_path.is_dir()  # an --out folder that was there before is kept, though empty


def test_no_face_in_small_frames_hints_at_the_minimum_face_size(script, capfd, tmp_path, testsrc):
    code, err = run(script, capfd, testsrc(tmp_path / "small.mp4", size="64x64"), "--out", tmp_path / "out", "--quiet")
    assert_one_line_error(code, err, "no face found in 25 frames", "detector.min_face_size 80 px", "64x64 frames")


def test_bad_config_key(script, capfd, short_clip, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("tracker:\n  detect_evry: 3\n")
    code, err = run(script, capfd, short_clip, "--out", tmp_path, "--config", config, "--quiet")
    assert_one_line_error(code, err, "unknown key 'detect_evry'", "detect_every")


@pytest.mark.parametrize("argv, fragments", [
    (["--smooth", "-1"], ["smooth_sigma must be >= 0", "-1"]),
    (["--config", "CONFIG"], ["bad.yaml", "smooth_sigma must be >= 0", "-5"]),
], ids=["flag", "config"])
def test_negative_smoothing_is_refused(script, capfd, tmp_path, testsrc, argv, fragments):
    (tmp_path / "bad.yaml").write_text("smooth_sigma: -5\n")
    argv = [str(tmp_path / "bad.yaml") if arg == "CONFIG" else arg for arg in argv]
    code, err = run(script, capfd, testsrc(tmp_path / "a.mp4"), "--out", tmp_path / "out", *argv, "--quiet")
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "out").exists()


def test_face_lost_for_some_frames_is_flagged_and_passed_through(script, capfd, tmp_path):
    code, err = run(script, capfd, asset_path("face_noface_video"), "--out", tmp_path, "--quiet")
    assert code == 0, err
    params = FaceParams.load(tmp_path / "params.npz")
    found = params.face_found
    assert 20 < found.sum() < len(found) - 20  # the face is there for a while, then gone
    assert np.isnan(params.expression[~found]).all() and np.isfinite(params.expression[found]).all()
    preview = list(VideoReader(tmp_path / "preview.mp4"))
    source = list(VideoReader(asset_path("face_noface_video")))
    assert len(preview) == len(source) == params.num_frames
    lost = int(np.flatnonzero(~found)[-1])
    assert np.abs(preview[lost].astype(int) - source[lost]).mean() < 3  # passed through, only re-encoded


def test_a_face_away_for_25_frames_is_the_same_face_after_and_the_frames_without_it_are_named(script, capfd,
                                                                                              tmp_path):
    """The face is painted over in frames 24-48: one face before and after, no face in between (not interpolated)."""
    video = face_clip(tmp_path / "away.mp4", 72, without_face=range(24, 49))
    code, out, err = run_with_output(script, capfd, video, "--out", tmp_path / "out", "--no-preview", "--quiet")
    assert code == 0, err
    params = FaceParams.load(tmp_path / "out" / "params.npz")
    assert np.flatnonzero(~params.face_found).tolist() == list(range(24, 49))
    assert np.isnan(params.crop_matrix[24:49]).all() and np.isfinite(params.expression[params.face_found]).all()
    assert "face 0 found in 47 of 72 frames; frames 24-48 without it" in out


@pytest.mark.parametrize("frames", [1, 2])
def test_a_one_or_two_frame_video_of_a_clear_face_is_reconstructed(script, capfd, tmp_path, frames):
    """Fewer keyframes than tracker.min_detections (3): a detection on each of them makes the track."""
    video = face_clip(tmp_path / "short.mp4", frames)
    code, out, err = run_with_output(script, capfd, video, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    params = FaceParams.load(tmp_path / "out" / "params.npz")
    assert params.num_frames == frames and params.face_found.all()
    assert f"face 0 found in {frames} of {frames} frames;" in out
    assert len(list(VideoReader(tmp_path / "out" / "preview.mp4"))) == frames


def test_several_faces_are_tracked_and_selectable(script, capfd, caplog, tmp_path, ffmpeg):
    group = ffmpeg(tmp_path / "group.mp4", "-loop", "1", "-framerate", "10", "-i", str(asset_path("multi_face_image")),
                   "-t", "1.5", "-vf", "scale=trunc(iw/4)*2:trunc(ih/4)*2", "-pix_fmt", "yuv420p")
    with caplog.at_level(logging.INFO):
        code, err = run(script, capfd, group, "--out", tmp_path / "largest", "--quiet", "--no-preview")
    assert code == 0, err
    assert "5 faces tracked" in caplog.text
    largest = FaceParams.load(tmp_path / "largest" / "params.npz")
    other_id = 3 if largest.track_id != 3 else 2
    code, err = run(script, capfd, group, "--out", tmp_path / "other", "--face", other_id, "--quiet", "--no-preview")
    assert code == 0, err
    other = FaceParams.load(tmp_path / "other" / "params.npz")
    assert other.track_id == other_id
    assert np.abs(np.nanmean(other.translation[:, :2] - largest.translation[:, :2], axis=0)).max() > 20
    code, err = run(script, capfd, group, "--out", tmp_path / "x", "--face", 9, "--quiet")
    assert_one_line_error(code, err, "9")


def test_grayscale_odd_size_and_non_ascii_path(script, capfd, short_clip, tmp_path, ffmpeg):
    folder = tmp_path / "vidéos ü 名"
    folder.mkdir()
    gray = ffmpeg(folder / "gris é.mkv", "-i", str(short_clip), "-vf", "scale=321:181,format=gray", "-c:v", "ffv1")
    code, err = run(script, capfd, gray, "--out", folder / "sortie", "--quiet")
    assert code == 0, err
    params = FaceParams.load(folder / "sortie" / "params.npz")
    assert params.face_found.mean() > 0.9
    preview = VideoReader(folder / "sortie" / "preview.mp4").info
    assert (preview.width, preview.height) == (321, 181)


def test_never_writes_over_the_input(script, capfd, short_clip, tmp_path):
    """--out pointing at the input's folder writes beside it and leaves the input untouched."""
    clip = tmp_path / "preview.mp4"  # named like an output on purpose
    shutil.copy(short_clip, clip)
    before = clip.read_bytes()
    code, err = run(script, capfd, clip, "--out", tmp_path, "--quiet")
    assert_one_line_error(code, err, "preview.mp4")
    assert clip.read_bytes() == before


def test_a_full_disk_while_writing_params_is_one_line(script, capfd, tmp_path, testsrc, monkeypatch):
    """The reconstruction is replaced by a saved one (this is about writing it): np.savez meets a full disk."""
    import errno
    import os

    from ned_outlier.reconstruction import reconstructor

    video = testsrc(tmp_path / "a.mp4", "-c:v", "libx264")
    params = FaceParams.load(saved_params_of(video, tmp_path / "a.npz"))
    monkeypatch.setattr(reconstructor, "reconstruct", lambda *args, **kwargs: params)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full_disk)
    code, err = run(script, capfd, video, "--out", tmp_path / "out", "--quiet")
    assert_one_line_error(code, err, f"cannot write {tmp_path / 'out' / 'params.npz'}: No space left on device")
    assert not (tmp_path / "out").exists()  # no partial file, and the folder made for it is removed again


def test_an_earlier_reconstruction_is_kept_unless_overwrite(script, capfd, tmp_path, testsrc, monkeypatch):
    """Refused before the reconstruction starts; with --overwrite replaced (the reconstruction is a saved one here)."""
    from dataclasses import replace

    from ned_outlier.reconstruction import reconstructor

    video = testsrc(tmp_path / "a.mp4", "-c:v", "libx264")
    params = FaceParams.load(saved_params_of(video, tmp_path / "a.npz"))
    params = replace(params, rotation=np.tile(np.eye(3, dtype=np.float32), (params.num_frames, 1, 1)))  # for the CSV
    out = tmp_path / "out"
    out.mkdir()
    (out / "params.csv").write_text("an earlier result")

    def started(*args, **kwargs):
        raise AssertionError("the reconstruction started")

    monkeypatch.setattr(reconstructor, "reconstruct", started)
    code, err = run(script, capfd, video, "--out", out, "--no-preview", "--quiet")
    assert_one_line_error(code, err, f"{out / 'params.csv'} exists; pass --overwrite to replace it")
    assert sorted(path.name for path in out.iterdir()) == ["params.csv"]
    monkeypatch.setattr(reconstructor, "reconstruct", lambda *args, **kwargs: params)
    code, err = run(script, capfd, video, "--out", out, "--no-preview", "--overwrite", "--quiet")
    assert code == 0, err
    assert sorted(path.name for path in out.iterdir()) == ["params.csv", "params.npz"]
    assert (out / "params.csv").read_text() != "an earlier result"


def test_flame_deca_from_the_users_files_and_the_editor_refuses_its_codes(script, capfd, tmp_path):
    """--backend flame-deca with FLAME- and DECA-format files (real layouts; DECA's last layer fixed so that the
    mesh sits on the face): FLAME's 50 + 1 codes in params.npz and params.csv, the mesh drawn as dots; edit.py's
    offline default says what edits them instead of failing on the way."""
    from tests.reconstruction.deca_fixture import DECA_OUTPUTS, fixed_codes, write_deca_checkpoint
    from tests.reconstruction.flame_fixture import write_flame_model

    code_vector = np.zeros(DECA_OUTPUTS)
    code_vector[150:200] = np.linspace(0.5, -0.5, 50)  # exp
    code_vector[203] = 0.2  # jaw opening, pose[3]
    code_vector[206:209] = (8.0, 0.0, 0.0)  # camera s, tx, ty
    deca = write_deca_checkpoint(tmp_path / "deca_model.tar", fixed_codes(DECA_OUTPUTS, code_vector))
    flame = write_flame_model(tmp_path / "generic_model.pkl")
    video = face_clip(tmp_path / "face.mp4", 12)
    code, out, err = run_with_output(script, capfd, video, "--out", tmp_path / "out", "--quiet", "--backend",
                                     "flame-deca", "--deca-model", deca, "--flame-model", flame)
    assert code == 0, err
    assert "codes regressed by the encoder (no fit error)" in out
    params = FaceParams.load(tmp_path / "out" / "params.npz")
    assert params.schema.backend == "flame-deca" and params.face_found.all()
    np.testing.assert_allclose(params.mouth[:, 0], 0.2, atol=1e-6)
    rows = list(csv.DictReader(open(tmp_path / "out" / "params.csv")))
    assert float(rows[0]["exp_00"]) == pytest.approx(0.5, abs=1e-5) and "AU12" not in rows[0]
    preview, source = next(iter(VideoReader(tmp_path / "out" / "preview.mp4"))), next(iter(VideoReader(video)))
    changed = np.abs(preview.astype(int) - source).max(axis=-1) > 40
    rows_changed, columns_changed = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
    assert 61 <= np.median(rows_changed) <= 176 and 82 <= np.median(columns_changed) <= 174  # dots on her face
    edit = load_script("edit")
    code, err = run(edit, capfd, "--emotion", "sad", "--params", tmp_path / "out" / "params.npz", video, "--out",
                    tmp_path / "edit.mp4")
    assert_one_line_error(code, err, "flame-deca", "--manipulator ned", "--renderer neural")
    assert not (tmp_path / "edit.mp4").exists()
