"""NED training on a tiny SynthMEAD: something is learned, the checkpoint reloads and refuses another schema, a
resumed run equals an uninterrupted one, the outlier weights act as lambda, and two CPU processes stay in sync."""

import csv
from pathlib import Path

import pytest
import torch

from ned_outlier.data.synthmead import MotionConfig, SynthConfig, build_synthmead
from ned_outlier.errors import UserError
from ned_outlier.manipulator.ned.checkpoint import load_ned
from ned_outlier.manipulator.ned.trainer import decay_factor, load_ned_config, train_ned
from ned_outlier.reconstruction.params import ParamSchema
from tests.factories import (kill_when, killed_after_a_checkpoint, launch_two_cpu_processes,
                             per_process_checksums, start_two_cpu_processes)

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synthmead(tmp_path_factory):
    """The astronaut as actor S001: neutral, happy, surprised, two 20-frame clips each, reconstructed once."""
    root = tmp_path_factory.mktemp("synthmead")
    config = SynthConfig(sources={"astronaut": {"media": "skimage:astronaut"}},
                         emotions=("neutral", "happy", "surprised"), clips_per_emotion=2,
                         motion=MotionConfig(frames=20), outliers={})
    build_synthmead(config, root, progress=False)
    return root


def tiny(synthmead, output, *overrides):
    return load_ned_config(REPO / "configs/ned/tiny_cpu.yaml", [
        f"data.root={synthmead}", f"data.cache={synthmead.parent / (synthmead.name + '_params')}",
        "data.emotions=[neutral, happy, surprised]", f"train.output_dir={output}", "train.batch_size=8",
        *overrides])


def test_decay_is_neds_linear_schedule():
    assert [decay_factor(e, 10, 10) for e in range(10)] == pytest.approx([1 - e / 10 for e in range(10)])
    assert [decay_factor(e, 4, 2) for e in range(4)] == [1.0, 1.0, 1.0, 0.5]
    assert decay_factor(3, 4, 0) == 1.0


def test_learns_and_the_checkpoint_reloads(synthmead, tmp_path):
    # 6 epochs: the cycle term barely moves in the first 4 on this tiny set (issue 16 is about learning faster)
    result = train_ned(tiny(synthmead, tmp_path / "run", "train.epochs=6", "train.decay_epochs=0"), progress=False)
    first, last = result.history[0], result.history[-1]
    assert last["g_latent/cycle"] < first["g_latent/cycle"]  # the generator learns to map codes back
    assert last["g_latent/mouth"] > first["g_latent/mouth"]  # and to keep the mouth's motion
    nets, schema, emotions = load_ned(result.model_path)
    assert emotions == ("neutral", "happy", "surprised") and schema.backend == "mediapipe-au"
    other = ParamSchema("deca-flame", tuple(f"exp{i}" for i in range(50)), ("jaw",), 5023)
    with pytest.raises(UserError, match="made for parameters of backend 'mediapipe-au'"):
        load_ned(result.model_path, expected_schema=other)
    assert any((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))


def test_resumed_run_equals_an_uninterrupted_one(synthmead, tmp_path):
    whole = train_ned(tiny(synthmead, tmp_path / "whole", "train.epochs=3", "train.decay_epochs=0"), progress=False)
    train_ned(tiny(synthmead, tmp_path / "parts", "train.epochs=2", "train.decay_epochs=0"), progress=False)
    resumed = train_ned(tiny(synthmead, tmp_path / "parts", "train.epochs=3", "train.decay_epochs=0"),
                        progress=False)
    assert len(resumed.history) == 1  # only the third epoch ran
    assert resumed.checksum == whole.checksum


def test_a_run_killed_between_the_checkpoint_renames_resumes_from_the_state_set_aside(synthmead, tmp_path):
    """save_resume_state moves `last` aside, then renames the new state into place: killed in between, the run
    folder holds only `.last.old`, which the next run resumes from (rather than starting again)."""
    settings = ("train.epochs=3", "train.decay_epochs=0")
    whole = train_ned(tiny(synthmead, tmp_path / "whole", *settings), progress=False)
    train_ned(tiny(synthmead, tmp_path / "parts", "train.epochs=2", "train.decay_epochs=0"), progress=False)
    checkpoints = tmp_path / "parts" / "checkpoints"
    (checkpoints / "last").rename(checkpoints / ".last.old")
    resumed = train_ned(tiny(synthmead, tmp_path / "parts", *settings), progress=False)
    assert len(resumed.history) == 1 and resumed.checksum == whole.checksum
    assert (checkpoints / "last").is_dir() and not (checkpoints / ".last.old").exists()


def test_two_processes_killed_mid_run_resume_to_the_uninterrupted_weights(synthmead, tmp_path):
    """A real two-process run (gloo on the CPU), SIGKILLed once its first mid-epoch checkpoint is in place, then run
    again: it resumes and ends with the weights of a run that was never stopped, in both processes."""
    cache = synthmead.parent / (synthmead.name + "_params")
    arguments = ("--config", REPO / "configs/ned/tiny_cpu.yaml", "--set", f"data.root={synthmead}", "--set",
                 f"data.cache={cache}", "--set", "data.emotions=[neutral, happy, surprised]", "--set",
                 "train.batch_size=4", "--set", "train.epochs=3", "--set", "train.checkpoint_every=2", "--quiet")
    whole = per_process_checksums(launch_two_cpu_processes("train_ned.py", *arguments, "--output-dir",
                                                           tmp_path / "whole").stdout, "parameter")
    parts = tmp_path / "parts"
    kill_when(start_two_cpu_processes("train_ned.py", *arguments, "--output-dir", parts),
              lambda: (parts / "checkpoints" / "last").is_dir())
    assert not (parts / "model.safetensors").exists()  # killed before the end
    resumed = launch_two_cpu_processes("train_ned.py", *arguments, "--output-dir", parts)
    assert "resuming from" in resumed.stderr + resumed.stdout
    assert per_process_checksums(resumed.stdout, "parameter") == whole


def test_a_run_killed_after_a_mid_epoch_checkpoint_resumes_to_the_same_weights(synthmead, tmp_path):
    """train.checkpoint_every: the resume state saved inside an epoch gives back the uninterrupted run exactly (the
    loaders' own generators keep the latents' random stream where the checkpoint left it)."""
    import ned_outlier.manipulator.ned.trainer as trainer

    settings = ("train.epochs=2", "train.decay_epochs=0", "train.batch_size=8", "train.checkpoint_every=3")
    whole = train_ned(tiny(synthmead, tmp_path / "whole", *settings), progress=False)
    with killed_after_a_checkpoint(trainer):  # dies right after the checkpoint at iteration 3
        train_ned(tiny(synthmead, tmp_path / "parts", *settings), progress=False)
    resumed = train_ned(tiny(synthmead, tmp_path / "parts", *settings), progress=False)
    assert resumed.checksum == whole.checksum


def test_a_run_that_fills_the_cache_equals_one_that_reads_it(synthmead, tmp_path):
    """Reconstructing the clips draws random numbers; the seed is set after the data, so it changes nothing."""
    settings = ("train.epochs=1", "train.decay_epochs=0", f"data.cache={tmp_path / 'cache'}")
    filling = train_ned(tiny(synthmead, tmp_path / "filling", *settings), progress=False)
    reading = train_ned(tiny(synthmead, tmp_path / "reading", *settings), progress=False)
    assert filling.checksum == reading.checksum


def write_lambdas(folder, synthmead, value):
    """folder/windows.csv giving every window of every clip the same lambda, with the scores.json of 10-frame
    windows every frame beside it."""
    folder.mkdir()
    (folder / "scores.json").write_text('{"window": 10, "hop": 1}')
    path = folder / "windows.csv"
    rows = [(clip.relative_to(synthmead).as_posix(), start, value)
            for clip in sorted(synthmead.rglob("*.mp4")) for start in range(11)]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "emotion", "start", "probability", "lambda"])
        writer.writerows([(p, "x", s, v, v) for p, s, v in rows])
    return path


def test_lambda_weights_the_loss(synthmead, tmp_path):
    plain = train_ned(tiny(synthmead, tmp_path / "plain", "train.epochs=1"), progress=False)
    ones = write_lambdas(tmp_path / "ones_lambda", synthmead, 1.0)
    weighted = train_ned(tiny(synthmead, tmp_path / "ones", "train.epochs=1", f"data.lambdas={ones}"),
                         progress=False)
    assert weighted.checksum == pytest.approx(plain.checksum, rel=1e-6)  # lambda 1 everywhere: plain NED
    zeros = write_lambdas(tmp_path / "zeros_lambda", synthmead, 0.0)
    frozen = train_ned(tiny(synthmead, tmp_path / "zeros", "train.epochs=1", f"data.lambdas={zeros}"),
                       progress=False)
    assert frozen.history[0]["lambda/mean"] == 0.0
    untouched = train_ned(tiny(synthmead, tmp_path / "untouched", "train.epochs=1", "optim.lr=0.0",
                               "optim.mapping_lr=0.0"), progress=False)
    assert frozen.checksum == pytest.approx(untouched.checksum, rel=1e-6)  # lambda 0: no gradient, no change


def test_two_cpu_processes_stay_in_sync(synthmead, tmp_path):
    cache = synthmead.parent / (synthmead.name + "_params")
    result = launch_two_cpu_processes(
        "train_ned.py", "--config", REPO / "configs/ned/tiny_cpu.yaml", "--set", f"data.root={synthmead}",
        "--set", f"data.cache={cache}", "--set", "data.emotions=[neutral, happy, surprised]",
        "--set", "train.batch_size=4", "--output-dir", tmp_path / "ddp", "--quiet")
    checksums = per_process_checksums(result.stdout, "parameter")
    assert len(checksums) == 2 and checksums[0] == checksums[1]


def test_standardised_codes_and_the_per_epoch_evaluation(synthmead, tmp_path):
    """data.standardise_codes keeps the training windows' statistics in the checkpoint; `evaluate` sees the networks
    in eval mode after each epoch and its values join the history."""
    from ned_outlier.manipulator.ned.trainer import load_windows

    seen = []

    def evaluate(nets):
        seen.append((nets.training, torch.is_grad_enabled()))
        return {"eval/code_scale_sum": float(nets.code_scale.sum())}

    config = tiny(synthmead, tmp_path / "standardised", "train.epochs=2", "data.standardise_codes=true")
    result = train_ned(config, progress=False, evaluate=evaluate)
    assert seen == [(False, False), (False, False)]
    codes = torch.from_numpy(load_windows(config.data, (), progress=False).codes).flatten(0, 1)
    nets, _, _ = load_ned(result.model_path)
    torch.testing.assert_close(nets.code_mean, codes.mean(dim=0))
    torch.testing.assert_close(nets.code_scale, codes.std(dim=0).clamp_min(1e-3))
    assert [h["eval/code_scale_sum"] for h in result.history] == pytest.approx([float(nets.code_scale.sum())] * 2)


def test_codes_relative_to_the_actors_neutral(synthmead, tmp_path):
    """data.relative_to_neutral: the networks see each window minus its actor's mean neutral code (here the
    statistics of standardise_codes show it), and the checkpoint says so."""
    from ned_outlier.data.ned_windows import with_actor_neutral
    from ned_outlier.manipulator.ned.trainer import load_windows

    config = tiny(synthmead, tmp_path / "relative", "train.epochs=1", "data.standardise_codes=true",
                  "data.relative_to_neutral=true")
    nets, _, _ = load_ned(train_ned(config, progress=False).model_path)
    windows = with_actor_neutral(load_windows(config.data, (), progress=False))
    relative = torch.from_numpy(windows.codes - windows.neutral[:, None]).flatten(0, 1)
    assert nets.relative_to_neutral and windows.neutral.any()
    torch.testing.assert_close(nets.code_mean, relative.mean(dim=0))


def test_the_averaged_networks_are_saved_and_resume_with_the_run(synthmead, tmp_path):
    """train.ema_beta: the checkpoint holds the moving average, not the last weights, and the average is part of
    the resume state (a run resumed at an epoch end saves the same model as one that was not stopped)."""
    from safetensors.torch import load_file

    ema = ("train.decay_epochs=0", "train.ema_beta=0.9")
    whole = train_ned(tiny(synthmead, tmp_path / "whole", "train.epochs=3", *ema), progress=False)
    train_ned(tiny(synthmead, tmp_path / "parts", "train.epochs=2", *ema), progress=False)
    resumed = train_ned(tiny(synthmead, tmp_path / "parts", "train.epochs=3", *ema), progress=False)
    saved, again = load_file(whole.model_path), load_file(resumed.model_path)
    assert saved.keys() == again.keys() and all(torch.equal(saved[k], again[k]) for k in saved)
    nets, _, _ = load_ned(whole.model_path)
    saved_sum = sum(p.detach().double().sum() for p in nets.parameters()).item()
    assert abs(saved_sum - whole.checksum[0]) > 1e-3  # the last weights' sum differs from the average's


@pytest.fixture(scope="module")
def deca_files(tmp_path_factory, synthmead):
    """FLAME and DECA stand-ins (real layouts, random weights: codes differ from frame to frame) and a cache of
    SynthMEAD reconstructed with flame-deca through configs/reconstruct/flame_deca.yaml, its files given by the
    environment variables the docs name."""
    from tests.reconstruction.deca_fixture import DECA_OUTPUTS, random_state, regressor_shapes, write_deca_checkpoint
    from tests.reconstruction.flame_fixture import write_flame_model

    folder = tmp_path_factory.mktemp("flame_deca_files")
    return {"FLAME_MODEL_PATH": str(write_flame_model(folder / "generic_model.pkl")),
            "DECA_MODEL_PATH": str(write_deca_checkpoint(folder / "deca_model.tar",
                                                         random_state(regressor_shapes(DECA_OUTPUTS), seed=3)))}


FLAME_DECA = ("data.reconstruct_config=configs/reconstruct/flame_deca.yaml",)


def test_trains_on_flame_codes_as_ned_does(synthmead, deca_files, tmp_path, monkeypatch):
    """NED's published setting: DECA's 50 FLAME expression codes and the jaw opening, reconstructed into the cache
    and trained on; the checkpoint is of that schema and refuses the offline backend's codes."""
    for name, path in deca_files.items():
        monkeypatch.setenv(name, path)
    cache = f"data.cache={tmp_path / 'flame_params'}"
    result = train_ned(tiny(synthmead, tmp_path / "run", *FLAME_DECA, cache, "train.epochs=6", "train.decay_epochs=0"),
                       progress=False)
    first, last = result.history[0], result.history[-1]
    assert last["g_latent/cycle"] < first["g_latent/cycle"]
    nets, schema, _ = load_ned(result.model_path)
    assert schema.backend == "flame-deca" and len(schema.expression_names) == 50
    assert schema.mouth_names == ("jaw_open",)
    offline = ParamSchema("mediapipe-au", ("AU01",), ("AU26",), 478)
    with pytest.raises(UserError, match="made for parameters of backend 'flame-deca'"):
        load_ned(result.model_path, expected_schema=offline)
    # the same cache under the offline backend's config: refused, not trained on as if it were that backend's
    with pytest.raises(UserError, match="holds reconstructions of backend flame-deca"):
        train_ned(tiny(synthmead, tmp_path / "mixed", cache, "train.epochs=1"), progress=False)


def test_missing_deca_files_stop_before_any_clip_is_skipped(synthmead, tmp_path, monkeypatch, caplog):
    for name in ("FLAME_MODEL_PATH", "DECA_MODEL_PATH"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match="deca_model.tar"):
        train_ned(tiny(synthmead, tmp_path / "run", *FLAME_DECA, f"data.cache={tmp_path / 'empty'}"), progress=False)
    assert "skipping" not in caplog.text and not (tmp_path / "empty").exists()
