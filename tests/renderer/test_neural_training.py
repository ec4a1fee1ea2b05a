"""Training the neural renderer on 36 real frames at 64 px: it learns, the checkpoint reloads and refuses another
schema, a resumed run equals an uninterrupted one, two CPU processes stay in sync, and the held-out score is
computed on frames it never saw."""

from pathlib import Path

import numpy as np
import pytest

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.params import ParamSchema
from ned_outlier.renderer.neural.checkpoint import load_renderer
from ned_outlier.renderer.neural.data import split_frames
from ned_outlier.renderer.neural.evaluation import held_out_scores, psnr, structural_similarity
from ned_outlier.renderer.neural.trainer import load_actor, load_renderer_config, train_renderer
from tests.factories import launch_two_cpu_processes, per_process_checksums

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs/renderer/tiny_cpu.yaml"
pytestmark = pytest.mark.slow


def tiny(clip, params, output, *overrides):
    return load_renderer_config(TINY, [f"data.video={clip}", f"data.params={params}", f"train.output_dir={output}",
                                       *overrides])


def test_psnr_by_hand():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # MSE = 255^2 / 12 -> PSNR = 10 log10(12)
    assert psnr(a, b) == pytest.approx(10 * np.log10(12))
    assert psnr(a, b, np.array([[False, True], [True, True]])) == np.inf


def test_ssim_is_one_for_equal_images_and_averages_over_the_mask():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert structural_similarity(a, a) == pytest.approx(1.0, abs=1e-5)
    b = a.copy()
    b[:, 16:] = 255 - b[:, 16:]  # the right half inverted
    left = np.zeros((32, 32), bool)
    left[:, :8] = True  # more than a window's half-width (5 px) from the change
    assert structural_similarity(a, b, left) == pytest.approx(1.0, abs=1e-5)
    assert structural_similarity(a, b) < 0.6


@pytest.fixture(scope="module")
def trained(smile_clip, smile_params, tmp_path_factory):
    output = tmp_path_factory.mktemp("renderer")
    return train_renderer(tiny(smile_clip, smile_params, output, "train.epochs=6"), progress=False), output


def test_learns_and_the_checkpoint_reloads(trained, smile_params):
    result, output = trained
    history = result.history
    assert len(history) == 6 and all(np.isfinite(list(epoch.values())).all() for epoch in history)
    # the L1 between generated and real faces (the offline perceptual term) falls as it learns
    assert history[-1]["g/perceptual"] < 0.7 * history[0]["g/perceptual"]
    loaded = load_renderer(result.model_path)
    assert loaded.model_config.conditioning.size == 64 and loaded.source_crop_size == 256
    assert loaded.trained_on.endswith("smile.mp4")
    other = ParamSchema("deca-flame", ("e1",), ("jaw",), 5023)
    with pytest.raises(UserError, match="deca-flame"):
        load_renderer(result.model_path, expected_schema=other)
    assert (output / "frames.npy").is_file() and (output / "checkpoints" / "last").is_dir()


def test_held_out_frames_are_scored_against_their_real_crops(trained, smile_clip, smile_params):
    result, output = trained
    config = tiny(smile_clip, smile_params, output)
    params, frames = load_actor(config, progress=False)
    _, held_out = split_frames(params.num_frames, config.data.train_fraction)
    scores, strip = held_out_scores(load_renderer(result.model_path), frames, held_out, examples=3, progress=False)
    assert scores["frames"] == len(held_out) == 7
    assert 10 < scores["psnr"] < 40 and 0 < scores["ssim"] < 1
    assert strip.shape == (2 * 64, 3 * 64, 3)
    untrained = load_renderer(result.model_path)
    for parameter in untrained.generator.parameters():
        parameter.data.normal_(0, 0.02)
    worse, _ = held_out_scores(untrained, frames, held_out, progress=False)
    assert scores["psnr"] > worse["psnr"] + 3  # what it learned carries over to unseen frames


def test_resumed_run_equals_an_uninterrupted_one(smile_clip, smile_params, tmp_path):
    whole = train_renderer(tiny(smile_clip, smile_params, tmp_path / "whole", "train.epochs=2"), progress=False)
    train_renderer(tiny(smile_clip, smile_params, tmp_path / "parts", "train.epochs=1"), progress=False)
    resumed = train_renderer(tiny(smile_clip, smile_params, tmp_path / "parts", "train.epochs=2"), progress=False)
    assert len(resumed.history) == 1  # only the second epoch ran
    assert resumed.checksum == whole.checksum


def test_two_cpu_processes_stay_in_sync(smile_clip, smile_params, tmp_path):
    result = launch_two_cpu_processes("train_renderer.py", "--config", TINY, "--video", smile_clip,
                                      "--params", smile_params, "--output-dir", tmp_path / "ddp", "--quiet")
    checksums = per_process_checksums(result.stdout, "generator")
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert "held-out frames 29-35" in result.stdout and (tmp_path / "ddp" / "held_out.png").is_file()
