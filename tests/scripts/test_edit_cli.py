"""scripts/edit.py as a user runs it: a real edit keeps frames, fps, size and audio; bad requests are one-line errors."""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ned_outlier.assets import asset_path
from ned_outlier.cli import run_cli
from ned_outlier.io.video import VideoReader

from cli_checks import assert_one_line_error, load_script, run, run_with_output
from factories import face_clip, saved_params_of

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "edit.py"


@pytest.fixture(scope="module")
def script():
    return load_script("edit")


@pytest.fixture(scope="module")
def clip(smile_clip):
    return smile_clip


@pytest.fixture(scope="module")
def saved_params(script, clip, tmp_path_factory):
    """A reconstruction of `clip`, saved once with --save-params and reused by the other tests."""
    folder = tmp_path_factory.mktemp("params")
    out, params = folder / "edited.mp4", folder / "params.npz"
    assert run_cli(script.main, [str(clip), "--emotion", "sad", "--out", str(out), "--save-params", str(params),
                                 "--quiet"]) == 0
    return params, out


def mean_change(frames_a, frames_b) -> float:
    """Mean absolute pixel difference of two frame sequences."""
    return float(np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(frames_a, frames_b)]))


def face_and_rest_change(source, edited, params_path) -> tuple[float, float]:
    """Mean absolute pixel difference inside the box of the face mesh and outside it, over the frames. Re-encoding
    alone changes both alike (about 1.5 grey levels here), an edit of the face the first one several times more."""
    from ned_outlier.reconstruction.params import FaceParams

    landmarks = FaceParams.load(params_path).landmarks
    inside, outside = [], []
    for a, b, mesh in zip(source, edited, landmarks):
        difference = np.abs(a.astype(int) - b).mean(axis=2)
        (x0, y0), (x1, y1) = mesh[:468, :2].min(axis=0).astype(int), mesh[:468, :2].max(axis=0).astype(int)
        face = np.zeros(difference.shape, bool)
        face[y0:y1, x0:x1] = True
        inside.append(difference[face].mean())
        outside.append(difference[~face].mean())
    return float(np.mean(inside)), float(np.mean(outside))


def test_edit_keeps_frames_fps_size_and_audio(saved_params, clip):
    params, edited = saved_params
    source_info, edited_info = VideoReader(clip).info, VideoReader(edited).info
    assert (edited_info.width, edited_info.height, edited_info.fps) == (source_info.width, source_info.height,
                                                                       source_info.fps)
    assert edited_info.has_audio
    source_frames, edited_frames = list(VideoReader(clip)), list(VideoReader(edited))
    assert len(edited_frames) == len(source_frames) == 36
    face, rest = face_and_rest_change(source_frames, edited_frames, params)
    assert face > 3 * rest  # the face was edited ...
    corner = np.mean([np.abs(a[:40, :40].astype(int) - b[:40, :40]).mean() for a, b in zip(source_frames, edited_frames)])
    assert corner < 2.0  # ... and the background kept (only re-encoded)


def test_same_request_gives_the_same_edit(script, capfd, clip, saved_params, tmp_path):
    params, first = saved_params
    again = tmp_path / "again.mp4"
    code, err = run(script, capfd, clip, "--emotion", "sad", "--params", params, "--out", again, "--quiet")
    assert code == 0, err
    for a, b in zip(VideoReader(first), VideoReader(again)):
        np.testing.assert_array_equal(a, b)


def test_default_output_beside_the_input_and_preview(script, capfd, clip, saved_params, tmp_path):
    params, _ = saved_params
    local = tmp_path / "talk.mp4"
    shutil.copy(clip, local)
    code, err = run(script, capfd, local, "--emotion", "joy", "--params", params, "--preview", "--quiet")
    assert code == 0, err
    assert (tmp_path / "talk_happy.mp4").is_file()
    preview = VideoReader(tmp_path / "talk_happy_preview.mp4").info
    assert (preview.width, preview.height) == (2 * VideoReader(local).info.width, VideoReader(local).info.height)


def test_reference_clip_style(script, capfd, clip, saved_params, tmp_path, ffmpeg):
    params, _ = saved_params
    reference = ffmpeg(tmp_path / "reference.mp4", "-i", str(asset_path("pexels_video")), "-frames:v", "30",
                       "-c:v", "libx264")  # her crying face, eyes shut: a very different style
    out = tmp_path / "styled.mp4"
    code, err = run(script, capfd, clip, "--reference", reference, "--params", params, "--out", out, "--quiet")
    assert code == 0, err
    styled, source = list(VideoReader(out)), list(VideoReader(clip))
    assert len(styled) == 36
    face, rest = face_and_rest_change(source, styled, params)
    assert face > 2 * rest  # her smile took the crying clip's style ...
    assert mean_change([a[:40, :40] for a in source], [b[:40, :40] for b in styled]) < 2.0  # ... the background not
    assert mean_change(list(VideoReader(saved_params[1])), styled) > 1.0  # and it is not the `sad` prototype's edit


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--emotion", "bored"], ["unknown emotion 'bored'", "happy", "sad"]),
        (["--emotion", "sad", "--intensity", "1.5"], ["--intensity must be between 0 and 1"]),
        (["--emotion", "sad", "--reference", "x.mp4"], ["exactly one of --emotion or --reference"]),
        ([], ["exactly one of --emotion or --reference"]),
        (["--emotion", "sad", "--out", "/nonexistent-folder/out.mp4"], ["does not exist"]),
        (["--emotion", "sad", "--manipulator", "ned"], ["--manipulator ned needs --checkpoint"]),
        (["--emotion", "sad", "--manipulator", "ned", "--checkpoint", "missing.safetensors"],
         ["checkpoint not found: missing.safetensors"]),
    ],
    ids=["unknown-emotion", "intensity", "both", "neither", "unwritable", "ned-no-checkpoint", "ned-missing"],
)
def test_bad_requests(script, capfd, clip, argv, fragments):
    code, err = run(script, capfd, clip, *argv, "--quiet")
    assert_one_line_error(code, err, *fragments)


def test_output_equal_to_input_is_refused(script, capfd, clip, tmp_path):
    local = tmp_path / "mine.mp4"
    shutil.copy(clip, local)
    before = local.read_bytes()
    code, err = run(script, capfd, local, "--emotion", "sad", "--out", tmp_path / "." / "mine.mp4", "--quiet")
    assert_one_line_error(code, err, "mine.mp4")
    assert local.read_bytes() == before


def test_missing_video_and_no_face(script, capfd, tmp_path):
    code, err = run(script, capfd, tmp_path / "none.mp4", "--emotion", "sad", "--quiet")
    assert_one_line_error(code, err, "no such file")
    code, err = run(script, capfd, asset_path("no_face_video"), "--emotion", "sad", "--out", tmp_path / "o.mp4",
                    "--quiet")
    assert_one_line_error(code, err, "no face found")


def test_entry_point_help():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--emotion", "--reference", "--intensity", "--mouth", "--out", "--preview", "--face", "--seed",
                 "--save-params", "--params"):
        assert flag in result.stdout


def test_frames_without_the_face_pass_through(script, capfd, tmp_path):
    """The face leaves the frame part-way: every frame is written, those without it unchanged (but for encoding)."""
    video = asset_path("face_noface_video")
    out = tmp_path / "edited.mp4"
    code, err = run(script, capfd, video, "--emotion", "angry", "--out", out, "--save-params", tmp_path / "p.npz",
                    "--quiet")
    assert code == 0, err
    from ned_outlier.reconstruction.params import FaceParams

    found = FaceParams.load(tmp_path / "p.npz").face_found
    source, edited = list(VideoReader(video)), list(VideoReader(out))
    assert len(edited) == len(source) == len(found)
    absent = np.flatnonzero(~found)
    assert len(absent) > 20
    assert max(np.abs(source[i].astype(int) - edited[i]).mean() for i in absent) < 3
    assert VideoReader(out).info.has_audio


def test_a_face_away_for_25_frames_is_edited_before_and_after_and_the_frames_without_it_are_named(script, capfd,
                                                                                                 tmp_path):
    video = face_clip(tmp_path / "away.mp4", 72, without_face=range(24, 49))
    code, out, err = run_with_output(script, capfd, video, "--emotion", "surprised", "--quiet")
    assert code == 0, err
    assert "edited the face in 47 of 72 frames; frames 24-48 without a face, left as they were" in out
    source, edited = list(VideoReader(video)), list(VideoReader(tmp_path / "away_surprised.mp4"))
    changes = [np.abs(a.astype(int) - b).mean() for a, b in zip(source, edited)]
    assert min(changes[:24] + changes[49:]) > 2 * max(changes[24:49])  # edited on both sides of the gap only


def test_a_one_frame_video_of_a_clear_face_is_edited(script, capfd, tmp_path):
    video = face_clip(tmp_path / "still.mp4", 1)
    code, out, err = run_with_output(script, capfd, video, "--emotion", "surprised", "--quiet")
    assert code == 0, err
    assert "edited the face in 1 of 1 frames\n" in out
    (source,), (edited,) = list(VideoReader(video)), list(VideoReader(tmp_path / "still_surprised.mp4"))
    change = np.abs(source.astype(int) - edited).mean(axis=2)
    assert change[30:210, 50:210].mean() > 2 * change[:, 220:].mean()  # the face changed, not only by re-encoding


def sideways_photo(path: Path) -> np.ndarray:
    """A portrait photo of the astronaut (512 x 400) stored sideways with EXIF orientation 6, as phones store
    portraits; returns the upright picture."""
    from PIL import Image
    from skimage import data

    upright = data.astronaut()[:, 50:450]
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to display
    Image.fromarray(upright).rotate(90, expand=True).save(path, quality=95, exif=exif)
    return upright


def test_a_photo_is_edited_upright_into_a_photo_beside_it(script, capfd, tmp_path):
    photo = tmp_path / "portrait.jpg"
    upright = sideways_photo(photo)
    stored = photo.read_bytes()
    code, out, err = run_with_output(script, capfd, photo, "--emotion", "surprised", "--preview", "--quiet")
    assert code == 0, err
    assert "edited the face in 1 of 1 frames" in out and f"wrote {tmp_path / 'portrait_surprised.jpg'}" in out
    (source,), (edited,) = list(VideoReader(photo)), list(VideoReader(tmp_path / "portrait_surprised.jpg"))
    assert source.shape == edited.shape == upright.shape  # read upright as the EXIF tag says, written upright
    assert np.abs(source.astype(int) - upright).mean() < 3  # (not merely the right shape: JPEG noise only)
    change = np.abs(edited.astype(int) - source).mean(axis=2)
    assert change[60:200, 130:270].mean() > 3 * change[300:, :].mean()  # the face changed, not only by re-encoding
    (preview,) = list(VideoReader(tmp_path / "portrait_surprised_preview.jpg"))
    assert preview.shape == (512, 800, 3) and np.abs(preview[:, :400].astype(int) - upright).mean() < 3
    assert photo.read_bytes() == stored  # the input is never changed
    code, err = run(script, capfd, photo, "--emotion", "surprised", "--quiet")
    assert_one_line_error(code, err, "portrait_surprised.jpg exists", "--overwrite")


def test_face_all_edits_every_face_of_a_group_photo_and_one_id_only_that_face(script, capfd, tmp_path):
    from ned_outlier.face.detector import FaceDetector

    photo = tmp_path / "group.jpg"
    shutil.copy(asset_path("multi_face_image"), photo)
    (source,) = list(VideoReader(photo))
    boxes = FaceDetector().detect([source])[0]
    assert len(boxes) == 5
    code, out, err = run_with_output(script, capfd, photo, "--emotion", "surprised", "--face", "all", "--quiet")
    assert code == 0, err
    assert out.startswith("edited 5 faces: face 0 in 1 of 1 frames; face 1 in 1 of 1 frames;")
    code, out, err = run_with_output(script, capfd, photo, "--emotion", "surprised", "--face", "2", "--quiet",
                                     "--out", tmp_path / "one.jpg")
    assert code == 0, err
    assert out.startswith("edited the face in 1 of 1 frames")

    def changes(path):
        (edited,) = list(VideoReader(path))
        difference = np.abs(edited.astype(int) - source).mean(axis=2)
        return [difference[int(y0):int(y1), int(x0):int(x1)].mean() for x0, y0, x1, y1 in boxes.boxes]

    every, one = changes(tmp_path / "group_surprised.jpg"), changes(tmp_path / "one.jpg")
    assert min(every) > 2 * sorted(one)[-2]  # all five faces changed, where a one-face edit leaves four as they were
    assert max(one) > 2 * sorted(one)[-2]


def test_a_file_that_is_not_an_image_is_one_line(script, capfd, tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"not a picture at all")
    code, err = run(script, capfd, fake, "--emotion", "happy", "--quiet")
    assert_one_line_error(code, err, "photo.png: not a readable image")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_grayscale_odd_sized_video(script, capfd, tmp_path, ffmpeg):
    gray = ffmpeg(tmp_path / "gris.mkv", "-ss", "9.6", "-i", str(asset_path("pexels_video")), "-frames:v", "24",
                  "-vf", "scale=321:181,format=gray", "-c:v", "ffv1")
    code, err = run(script, capfd, gray, "--emotion", "surprised", "--quiet")
    assert code == 0, err
    info = VideoReader(tmp_path / "gris_surprised.mp4").info
    assert (info.width, info.height) == (321, 181)
    assert len(list(VideoReader(tmp_path / "gris_surprised.mp4"))) == 24


def test_a_ned_checkpoint_edits_the_clip_by_emotion_and_seed(script, capfd, clip, saved_params, tmp_path):
    """An untrained NED: each emotion has its own mapping head and the seed draws the latent z, so both change the
    edit; the same request twice gives the same frames."""
    import torch

    from ned_outlier.manipulator.ned.checkpoint import save_ned
    from ned_outlier.manipulator.ned.networks import NedNetworks
    from ned_outlier.reconstruction.params import FaceParams

    params, _ = saved_params
    schema = FaceParams.load(params).schema
    torch.manual_seed(0)
    nets = NedNetworks(len(schema.mouth_names) + len(schema.expression_names), 7)
    checkpoint = save_ned(nets, tmp_path / "ned.safetensors", schema,
                          ("neutral", "angry", "disgusted", "fear", "happy", "sad", "surprised"))

    def edit(name, emotion, seed):
        out = tmp_path / f"{name}.mp4"
        code, err = run(script, capfd, clip, "--emotion", emotion, "--seed", seed, "--manipulator", "ned",
                        "--checkpoint", checkpoint, "--params", params, "--out", out, "--quiet")
        assert code == 0, err
        return list(VideoReader(out))

    sad, source = edit("sad", "sad", 0), list(VideoReader(clip))
    assert len(sad) == 36
    face, rest = face_and_rest_change(source, sad, params)
    assert face > 2 * rest  # an untrained NED moves the face
    again = edit("again", "sad", 0)
    for a, b in zip(sad, again):
        np.testing.assert_array_equal(a, b)
    assert mean_change(sad, edit("happy", "happy", 0)) > 0.5  # another emotion, another style
    assert mean_change(sad, edit("seed1", "sad", 1)) > 0.5  # another z, another style


@pytest.fixture(scope="module")
def renderer_checkpoint(saved_params, tmp_path_factory):
    """An untrained 64-px neural renderer for the clip's schema: what edit.py does with it, not how good it is."""
    import torch

    from ned_outlier.reconstruction.params import FaceParams
    from ned_outlier.renderer.neural.checkpoint import save_renderer
    from ned_outlier.renderer.neural.conditioning import CONDITION_CHANNELS, ConditioningConfig
    from ned_outlier.renderer.neural.networks import GeneratorConfig, RendererGenerator
    from ned_outlier.renderer.neural.objective import RendererModelConfig

    torch.manual_seed(0)
    model = RendererModelConfig(ConditioningConfig(size=64), GeneratorConfig(ngf=8, n_downsample=2, n_blocks=2))
    generator = RendererGenerator(CONDITION_CHANNELS, model.generator)
    schema = FaceParams.load(saved_params[0]).schema
    return save_renderer(generator, tmp_path_factory.mktemp("renderer") / "renderer.safetensors", model, schema, 256)


def test_a_neural_renderer_replaces_the_face_only(script, capfd, clip, saved_params, renderer_checkpoint, tmp_path):
    from ned_outlier.reconstruction.params import FaceParams

    params_path, _ = saved_params
    out = tmp_path / "neural.mp4"
    code, err = run(script, capfd, clip, "--emotion", "happy", "--renderer", "neural", "--checkpoint",
                    renderer_checkpoint, "--params", params_path, "--out", out, "--quiet")
    assert code == 0, err
    frames, source = list(VideoReader(out)), list(VideoReader(clip))
    assert len(frames) == len(source) == 36
    params = FaceParams.load(params_path)
    face = params.landmarks[0, :468, :2]
    (x0, y0), (x1, y1) = face.min(axis=0).astype(int), face.max(axis=0).astype(int)
    inner = (slice(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4), slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4))
    difference = np.abs(frames[0].astype(int) - source[0])
    assert difference[inner].mean() > 20  # the untrained renderer's face is not hers
    assert difference[:, : max(x0 - 40, 1)].mean() < 3  # the background beside the face is kept


@pytest.mark.parametrize("argv, fragments", [
    (["--renderer", "neural"], ["--renderer neural needs --checkpoint"]),
    (["--manipulator", "ned", "--renderer", "neural", "RENDERER"], ["--manipulator ned needs --checkpoint"]),
    (["RENDERER"], ["is a renderer: add --renderer neural"]),
    (["RENDERER", "RENDERER", "--renderer", "neural"], ["two renderer checkpoints"]),
], ids=["no-checkpoint", "renderer-for-manipulator", "unused", "twice"])
def test_checkpoint_roles_are_checked(script, capfd, clip, renderer_checkpoint, argv, fragments):
    argv = [item for arg in argv for item in (["--checkpoint", renderer_checkpoint] if arg == "RENDERER" else [arg])]
    code, err = run(script, capfd, clip, "--emotion", "sad", *argv, "--quiet")
    assert_one_line_error(code, err, *fragments)


def test_a_resume_state_is_not_a_checkpoint_and_the_model_is_named(script, capfd, clip, tmp_path):
    import torch
    from safetensors.torch import save_file

    state = tmp_path / "run" / "checkpoints" / "last" / "model.safetensors"
    state.parent.mkdir(parents=True)
    save_file({"weight": torch.zeros(1)}, str(state))  # what accelerate's save_state writes
    code, err = run(script, capfd, clip, "--emotion", "sad", "--manipulator", "ned", "--checkpoint", state, "--quiet")
    assert_one_line_error(code, err, "neither a NED manipulator", "resume state", str(tmp_path / "run"))


def test_params_of_another_video_of_the_same_size_are_refused(script, capfd, tmp_path, testsrc):
    video = testsrc(tmp_path / "a.mp4", "-c:v", "libx264")
    other = testsrc(tmp_path / "b.mp4", "-vf", "hflip", "-c:v", "libx264")  # same size, rate and length
    params = saved_params_of(video, tmp_path / "a.npz")
    code, err = run(script, capfd, other, "--emotion", "sad", "--params", params, "--quiet")
    assert_one_line_error(code, err, f"--params {params} do not belong to {other}", "first frames differ")
    assert not (tmp_path / "b_sad.mp4").exists()


@pytest.mark.parametrize("damage, fragments", [
    (lambda path: path.write_bytes(path.read_bytes()[:1000]), ["not a FaceParams file, or a truncated one"]),
    (lambda path: np.savez(path, **{**dict(np.load(path)), "scale": np.zeros(3)}),
     ["a damaged FaceParams file", "scale has 3 frames"]),
], ids=["truncated", "arrays-disagree"])
def test_a_damaged_params_file_is_one_line(script, capfd, tmp_path, testsrc, damage, fragments):
    video = testsrc(tmp_path / "a.mp4", "-c:v", "libx264")
    params = saved_params_of(video, tmp_path / "a.npz")
    damage(params)
    code, err = run(script, capfd, video, "--emotion", "sad", "--params", params, "--quiet")
    assert_one_line_error(code, err, str(params), *fragments)


def test_a_full_disk_while_saving_params_is_one_line(script, capfd, tmp_path, testsrc, monkeypatch):
    video = testsrc(tmp_path / "a.mp4", "-c:v", "libx264")
    params = saved_params_of(video, tmp_path / "a.npz")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full_disk)
    code, err = run(script, capfd, video, "--emotion", "sad", "--params", params, "--save-params",
                    tmp_path / "again.npz", "--quiet")
    assert_one_line_error(code, err, f"cannot write {tmp_path / 'again.npz'}: No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "a.npz"]  # no partial file, no edit


@pytest.mark.parametrize("argv, fragments", [
    (["--emotion", "sad", "--save-params", "{missing}/p.npz"], ["cannot write", "does not exist"]),
    (["--emotion", "sad", "--save-params", "{folder}"], ["it is a folder"]),
    (["--emotion", "sad", "--save-params", "{video}"], ["is the same file as input"]),
    (["--emotion", "sad", "--out", "{tmp}/a.mp4", "--preview"], ["output", "a_preview.mp4 is the same file as input"]),
    (["--reference", "{missing}/r.mp4"], ["r.mp4: no such file"]),
    (["--emotion", "sad", "--manipulator", "ned", "--checkpoint", "{folder}"],
     ["is a folder, not a checkpoint file", "model.safetensors", "this folder holds ned.safetensors"]),
    (["--emotion", "happy", "--config", "{tmp}/no_facs.yaml"],
     ["no_facs.yaml has no facs section with emotion prototypes", "cannot edit to 'happy'"]),
    (["--emotion", "sad", "--config", "{tmp}/happy_only.yaml"], ["facs.emotions has no prototype of 'sad'",
                                                                  "(it has happy)"]),
    (["--emotion", "sad", "--config", "{tmp}/sigma.yaml"], ["sigma.yaml", "temporal_sigma must be >= 0", "-5"]),
    (["--emotion", "sad", "--config", "{tmp}/strength.yaml"], ["strength.yaml", "facs.strength must be >= 0", "-40"]),
    (["--emotion", "sad", "--config", "{tmp}/crf.yaml"], ["crf.yaml", "encoder.crf must be an integer from 0 to 51",
                                                           "60"]),
    (["--emotion", "sad", "--out", "{tmp}/o.jpg"], ["--out", "o.jpg is a photo", "a_preview.mp4 is a video", ".mp4"]),
    (["--emotion", "sad", "--face", "all", "--save-params", "{tmp}/p.npz"], ["--face all", "a params file holds one"]),
    (["--emotion", "sad", "--face", "everyone"], ["--face must be 'largest', 'all' or a track id", "'everyone'"]),
], ids=["save-params-folder-missing", "save-params-is-a-folder", "save-params-is-the-input", "input-is-the-preview",
        "reference-missing", "checkpoint-is-a-folder", "config-without-facs", "config-without-the-emotion",
        "negative-temporal-sigma", "negative-strength", "crf-out-of-range", "photo-out-of-a-video",
        "all-faces-into-one-params-file", "unknown-face"])
def test_bad_arguments_are_refused_before_any_work(script, capfd, tmp_path, testsrc, monkeypatch, argv, fragments):
    """Each refused before the reconstruction starts (here it would fail the test) and before writing anything."""
    from ned_outlier.reconstruction import reconstructor

    def started(*args, **kwargs):
        raise AssertionError("the reconstruction started")

    monkeypatch.setattr(reconstructor, "reconstruct", started)
    video = testsrc(tmp_path / "a_preview.mp4", "-c:v", "libx264")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "ned.safetensors").write_bytes(b"")
    configs = {"no_facs": "temporal_sigma: 2.0\n", "happy_only": "facs:\n  emotions:\n    happy: {AU12: 1.0}\n",
               "sigma": "temporal_sigma: -5\n", "strength": "facs:\n  strength: -40\n", "crf": "encoder:\n  crf: 60\n"}
    for name, text in configs.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    names = {"missing": tmp_path / "missing", "folder": folder, "video": video, "tmp": tmp_path}
    before = sorted(tmp_path.rglob("*"))
    code, err = run(script, capfd, video, *(arg.format(**names) for arg in argv), "--quiet")
    assert_one_line_error(code, err, *fragments)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("argv, existing", [
    (["--out", "{tmp}/o.mp4"], "o.mp4"),
    ([], "a_sad.mp4"),
    (["--out", "{tmp}/o.mp4", "--preview"], "o_preview.mp4"),
    (["--save-params", "{tmp}/p.npz"], "p.npz"),
], ids=["out", "default-out", "preview", "save-params"])
def test_an_existing_output_is_refused_before_any_work(script, capfd, tmp_path, testsrc, monkeypatch, argv, existing):
    from ned_outlier.reconstruction import reconstructor

    def started(*args, **kwargs):
        raise AssertionError("the reconstruction started")

    monkeypatch.setattr(reconstructor, "reconstruct", started)
    video = testsrc(tmp_path / "a.mp4", "-c:v", "libx264")
    (tmp_path / existing).write_bytes(b"an earlier result")
    before = sorted(tmp_path.iterdir())
    code, err = run(script, capfd, video, "--emotion", "sad", *(arg.format(tmp=tmp_path) for arg in argv), "--quiet")
    assert_one_line_error(code, err, f"{tmp_path / existing} exists; pass --overwrite to replace it")
    assert (tmp_path / existing).read_bytes() == b"an earlier result"
    assert sorted(tmp_path.iterdir()) == before  # no lock file left either


def test_overwrite_replaces_an_existing_output(script, capfd, clip, saved_params, tmp_path):
    params, first = saved_params
    out = tmp_path / "edited.mp4"
    out.write_bytes(b"an earlier result")
    code, err = run(script, capfd, clip, "--emotion", "sad", "--params", params, "--out", out, "--overwrite",
                    "--quiet")
    assert code == 0, err
    assert out.read_bytes() == first.read_bytes()
    assert sorted(tmp_path.iterdir()) == [out]


HOLDER = """
import sys, time
from ned_outlier.io.atomic import atomic_output, claim_outputs
with claim_outputs([sys.argv[1]]), atomic_output(sys.argv[1]) as temp:
    temp.write_bytes(b"half an edit")
    print("writing", flush=True)
    time.sleep(120)
"""


def test_a_second_edit_of_the_same_output_fails_at_once_and_a_killed_runs_files_are_removed(
        script, capfd, clip, saved_params, tmp_path):
    """Another process writes the output (holding its lock, a partial file half written): an edit of it stops at once
    with one line. Once that process is killed (kill -9: its lock file and partial file stay), the next edit of the
    output works and removes them."""
    import signal

    params, first = saved_params
    out = tmp_path / "edited.mp4"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "writing"
        code, err = run(script, capfd, clip, "--emotion", "sad", "--params", params, "--out", out, "--quiet")
        assert_one_line_error(code, err, f"{out} is being written by another run (process {holder.pid}")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    left = sorted(path.name for path in tmp_path.iterdir())
    assert left[0] == ".edited.mp4.lock" and left[1].startswith(f".edited.mp4.partial-{holder.pid}-")
    code, err = run(script, capfd, clip, "--emotion", "sad", "--params", params, "--out", out, "--quiet")
    assert code == 0, err
    assert sorted(tmp_path.iterdir()) == [out]  # the dead run's lock and partial file are gone
    assert out.read_bytes() == first.read_bytes()


def test_a_reference_without_a_face_is_named(script, capfd, clip, saved_params, tmp_path):
    params, _ = saved_params
    reference = asset_path("no_face_video")
    code, err = run(script, capfd, clip, "--reference", reference, "--params", params, "--out", tmp_path / "o.mp4",
                    "--quiet")
    assert_one_line_error(code, err, f"{reference}: no face found")
    assert list(tmp_path.iterdir()) == []


def test_the_edit_configs_encoder_writes_the_output_and_its_preview(script, capfd, clip, saved_params, tmp_path):
    params, _ = saved_params
    sizes = {}
    for crf in (8, 40):
        config = tmp_path / f"crf{crf}.yaml"
        config.write_text((REPO / "configs" / "edit" / "default.yaml").read_text()
                          .replace("crf: 16 ", f"crf: {crf} "))  # the shipped setting, one number changed
        out = tmp_path / f"crf{crf}.mp4"
        code, err = run(script, capfd, clip, "--emotion", "sad", "--params", params, "--config", config,
                        "--out", out, "--preview", "--quiet")
        assert code == 0, err
        sizes[crf] = out.stat().st_size, (tmp_path / f"crf{crf}_preview.mp4").stat().st_size
    assert sizes[8][0] > 2 * sizes[40][0] and sizes[8][1] > 2 * sizes[40][1]
