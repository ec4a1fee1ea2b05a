"""scripts/train_renderer.py's bad requests are one-line errors, reported before any reconstruction or training."""

from pathlib import Path

import pytest

from cli_checks import assert_one_line_error, load_script, run


CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "renderer"


@pytest.fixture(scope="module")
def script():
    return load_script("train_renderer")


def test_no_video(script, capfd, tmp_path):
    code, err = run(script, capfd, "--config", CONFIGS / "tiny_cpu.yaml", "--output-dir", tmp_path)
    assert_one_line_error(code, err, "no actor video", "--video")


def test_missing_vgg_weights_are_named_with_their_key(script, capfd, tmp_path):
    code, err = run(script, capfd, "--config", CONFIGS / "actor.yaml", "--video", tmp_path / "a.mp4",
                    "--output-dir", tmp_path)
    assert_one_line_error(code, err, "weights/vgg19-dcbb9e9d.pth", "loss.perceptual_weights")


def test_unknown_config_key(script, capfd, tmp_path):
    code, err = run(script, capfd, "--config", CONFIGS / "tiny_cpu.yaml", "--set", "train.epoch=2",
                    "--video", tmp_path / "a.mp4")
    assert_one_line_error(code, err, "unknown key 'epoch'")


def test_missing_video_file(script, capfd, tmp_path):
    code, err = run(script, capfd, "--config", CONFIGS / "tiny_cpu.yaml", "--video", tmp_path / "none.mp4",
                    "--output-dir", tmp_path / "run")
    assert_one_line_error(code, err, "none.mp4")


def test_an_output_folder_of_another_video_is_refused(script, capfd, smile_params, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "params.npz").write_bytes(smile_params.read_bytes())
    code, err = run(script, capfd, "--config", CONFIGS / "tiny_cpu.yaml", "--video", tmp_path / "other.mp4",
                    "--output-dir", tmp_path / "run")
    assert_one_line_error(code, err, "holds a run on", "smile.mp4", "--output-dir")


def test_params_of_another_video_are_refused(script, capfd, tmp_path, testsrc):
    from factories import saved_params_of

    params = saved_params_of(testsrc(tmp_path / "a.mp4", "-c:v", "libx264"), tmp_path / "a.npz")
    other = testsrc(tmp_path / "b.mp4", "-vf", "hflip", "-c:v", "libx264")
    code, err = run(script, capfd, "--config", CONFIGS / "tiny_cpu.yaml", "--video", other, "--params", params,
                    "--output-dir", tmp_path / "run")
    assert_one_line_error(code, err, f"data.params {params} do not belong to {other}", "first frames differ")
