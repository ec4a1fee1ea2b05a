"""The experiment's measures on hand-made cases: outlier precision/recall, the summary over seeds and the committed
summary, the mouth r, the paired code error, the code judge (separable toy problems, identity-relative codes,
caching) and which earlier runs are reused."""

import json
from dataclasses import replace

import numpy as np
import torch
import pytest

from ned_outlier.data.synthmead import ClipTruth, outlier_detection
from ned_outlier.errors import UserError
from experiments.code_classifier import train_code_classifier
from experiments.outlier_experiment import pearson_rows, summarise_runs, table
from factories import experiment_clip, experiment_setting


def truth(path, actor, kind, label="happy"):
    return ClipTruth(path, actor, label, label, 1.0, kind, 40, onset_end=1, offset_start=39)


def test_outlier_precision_and_recall_by_hand():
    truths = [truth("a", "S1", "clean"), truth("b", "S1", "ambiguous"), truth("c", "S1", "wrong_label"),
              truth("n", "S1", "clean", label="neutral"), truth("t", "S9", "ambiguous")]
    lambdas = {("a", 0): 1.0, ("a", 5): 0.4,            # clean: one false alarm
               ("b", 0): 0.3, ("b", 5): 1.0,            # ambiguous: one hit, one miss
               ("c", 0): 0.5,                           # wrong label: a hit
               ("n", 0): 0.2,                           # neutral clips are never counted
               ("t", 0): 0.1}                           # a test actor: not counted
    result = outlier_detection(lambdas, truths, {"S1"}, window=10)
    assert (result["windows"], result["true_outliers"], result["flagged"]) == (5, 3, 3)
    assert result["precision"] == pytest.approx(2 / 3) and result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["per_kind"] == {"ambiguous": {"outlier_windows": 2, "recall": 0.5},
                                  "wrong_label": {"outlier_windows": 1, "recall": 1.0}}
    assert result["false_alarm_rate"] == pytest.approx(0.5)  # clean a: 1 of its 2 windows flagged
    # outliers b/0 0.3, b/5 1.0, c/0 0.5; others a/0 1.0, a/5 0.4. Of the 2 x 3 pairs the other window is higher in
    # 3 (1.0 > 0.3, 1.0 > 0.5, 0.4 > 0.3), equal in 1 (1.0 = 1.0, half), lower in 2: AUC 3.5 / 6
    assert result["mean_lambda_outliers"] == pytest.approx(0.6)
    assert result["mean_lambda_others"] == pytest.approx(0.7)
    assert result["ranking_auc"] == pytest.approx(3.5 / 6)


def test_summary_over_seeds_and_table():
    measures = ("code_judge_target_accuracy", "fer_target_rate", "fer_target_probability", "mouth_r")  # no code_error: "-"
    runs = {"lambda_fer/seed0": dict(zip(measures, (0.5, 0.2, 0.3, 0.9))),
            "lambda_fer/seed1": dict(zip(measures, (0.7, 0.4, 0.3, 0.8))),
            "none/seed0": dict(zip(measures, (0.4, 0.1, 0.2, 0.7)))}
    summary = summarise_runs(runs)
    assert summary["lambda_fer"]["code_judge_target_accuracy"]["mean"] == pytest.approx(0.6)
    assert summary["lambda_fer"]["code_judge_target_accuracy"]["std"] == pytest.approx(0.1)
    assert summary["none"]["mouth_r"]["values"] == [0.7]
    detection = {"precision": 0.5, "recall": 0.25, "f1": 1 / 3, "flagged": 2, "true_outliers": 4, "windows": 10,
                 "per_kind": {"ambiguous": {"outlier_windows": 3, "recall": 1 / 3}}}
    text = table({"summary": summary, "scorers": {"fer": detection}, "code_judge": {"test_accuracy": 0.9}})
    assert text.splitlines()[0] == "| measure | NED (no lambda) | NED + fer lambda |"  # plain NED first
    assert "| code judge: target accuracy | 0.400 ± 0.000 | 0.600 ± 0.100 |" in text
    assert "fer's lambda < 1 as an outlier flag: precision 0.500, recall 0.250 (ambiguous 0.333)" in text
    assert "| paired code error against the twin (lower is better) | - | - |" in text  # runs without twins


def test_mouth_r_skips_still_components():
    t = np.arange(10.0)
    a = np.stack([t, np.ones(10)], axis=1)
    b = np.stack([2 * t + 1, t], axis=1)  # component 1 of `a` does not move: skipped
    assert pearson_rows(a, b) == pytest.approx(1.0)
    assert np.isnan(pearson_rows(np.ones((5, 1)), np.ones((5, 1))))


def test_code_judge_learns_separable_windows():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    codes = rng.normal(0, 0.3, (300, 10, 5)).astype(np.float32)
    codes[np.arange(300), :, labels] += 2.0  # class k lifts component k
    judge = train_code_classifier(codes[:200], labels[:200], 3, epochs=20)
    assert np.mean(judge.predict(codes[200:]) == labels[200:]) > 0.95


def test_uniform_table_gives_every_window_the_mean_lambda(tmp_path):
    import csv

    from experiments.outlier_experiment import uniform_table

    from ned_outlier.data.ned_windows import read_lambda_table

    table = tmp_path / "windows.csv"
    table.write_text("path,emotion,start,probability,lambda\na,happy,0,0.2,0.2\na,happy,1,0.9,1.0\n")
    (tmp_path / "scores.json").write_text('{"window": 10, "hop": 1}')
    uniform = uniform_table(str(table), tmp_path / "uniform")
    rows = list(csv.DictReader(open(uniform)))
    assert [float(r["lambda"]) for r in rows] == [0.6, 0.6] and [r["start"] for r in rows] == ["0", "1"]
    assert read_lambda_table(uniform).weights == {("a", 0): 0.6, ("a", 1): 0.6}  # the trainer reads it as a table


def test_the_oracle_weighs_truths_outliers_zero_and_the_rest_one(tmp_path):
    from experiments.outlier_experiment import oracle_table

    from ned_outlier.data.ned_windows import read_lambda_table

    table = tmp_path / "windows.csv"
    rows = [("c", 0), ("c", 15), ("c", 30), ("w", 15), ("n", 0)]  # clean: onset, hold, offset; wrong label; neutral
    table.write_text("path,emotion,start,probability,lambda\n" + "".join(f"{p},happy,{s},0.5,0.5\n" for p, s in rows))
    (tmp_path / "scores.json").write_text('{"window": 10, "hop": 1}')
    truths = [ClipTruth("c", "S1", "happy", "happy", 1.0, "clean", 40, onset_end=8, offset_start=32),
              truth("w", "S1", "wrong_label"), truth("n", "S1", "clean", label="neutral")]
    oracle = oracle_table(str(table), tmp_path / "oracle", truths)
    # c/0: frames 0-9, 2 inside the expressive span 8-32 (an onset outlier); c/30: 30-39, 2 inside (offset)
    assert read_lambda_table(oracle).weights == {("c", 0): 0.0, ("c", 15): 1.0, ("c", 30): 0.0, ("w", 15): 0.0,
                                                 ("n", 0): 1.0}
    assert json.loads((tmp_path / "oracle" / "scores.json").read_text())["window"] == 10


def fer_at(lambdas) -> dict:
    """The experiment's `scorers` with fer alone, its table at `lambdas`."""
    return {"fer": {"lambdas": str(lambdas), "scoring_config": "configs/ned/score_outliers.yaml"}}


def test_prepare_synthmead_refuses_a_folder_that_is_not_synthmead(tmp_path):
    from ned_outlier.errors import UserError
    from experiments.outlier_experiment import ExperimentConfig, prepare_synthmead

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("not a SynthMEAD set")
    config = ExperimentConfig(data=str(tmp_path / "data"), scorers=fer_at(tmp_path / "lambda" / "windows.csv"))
    with pytest.raises(UserError, match="no truth.csv"):
        prepare_synthmead(config, progress=False)


def tiny_synthmead_config(folder):
    """A SynthMEAD config of two 12-frame clips (neutral, happy) of the astronaut."""
    path = folder / "synthmead.yaml"
    path.write_text("emotions: [neutral, happy]\nclips_per_emotion: 1\nmotion: {frames: 12}\n"
                    "sources: {astronaut: {media: 'skimage:astronaut'}}\n")
    return path


@pytest.mark.slow
def test_prepare_makes_synthmead_and_its_lambdas_once(tmp_path):
    import csv

    from experiments.outlier_experiment import ExperimentConfig, prepare_scorers, prepare_synthmead

    config = ExperimentConfig(data=str(tmp_path / "data"), scorers=fer_at(tmp_path / "lambda" / "windows.csv"),
                              synthmead_config=str(tiny_synthmead_config(tmp_path)), arms=("lambda_fer",))
    assert prepare_synthmead(config, progress=False) == [tmp_path / "data"]
    assert prepare_scorers(config, progress=False) == [tmp_path / "lambda"]
    with open(tmp_path / "data" / "truth.csv") as handle:
        clips = {row["path"] for row in csv.DictReader(handle)}
    with open(tmp_path / "lambda" / "windows.csv") as handle:
        windows = list(csv.DictReader(handle))
    assert len(clips) == 2 and {w["path"] for w in windows} == clips
    assert len(windows) == 2 * (12 - 10 + 1)  # every 10-frame window of both clips, hop 1
    assert all(0 < float(w["lambda"]) <= 1 for w in windows)
    assert prepare_synthmead(config, progress=False) + prepare_scorers(config, progress=False) == []  # both exist


def test_paired_code_error_by_hand():
    from experiments.outlier_experiment import paired_code_error

    twin = np.zeros((3, 2))
    source = np.array([[1.0, 2.0], [1.0, 2.0], [9.0, 9.0]])
    edited = np.array([[0.5, 0.0], [0.5, 1.0], [np.nan, np.nan]])  # frame 2 has no face in the edit: left out
    error, source_error = paired_code_error(edited, twin, source, scale=np.array([0.5, 1.0]))
    assert error == pytest.approx(np.mean([1.0, 0.0, 1.0, 1.0]))   # |0.5| / 0.5 = 1, |1| / 1 = 1
    assert source_error == pytest.approx(np.mean([2.0, 2.0, 2.0, 2.0]))
    assert paired_code_error(twin, twin, source, np.ones(2))[0] == 0.0


def test_learning_curves_figure(tmp_path):
    from experiments.outlier_experiment import write_learning_curves

    curves = {"none/seed0": {"iteration": [100, 200], "target_accuracy": [0.2, 0.6]}}
    path = write_learning_curves(curves, 7, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_window_target_accuracy_rewards_translations_that_follow_the_target():
    import torch
    from types import SimpleNamespace

    from experiments.outlier_experiment import window_target_accuracy

    class Nets:
        def __init__(self, follows):
            self.config, self.n_emotions, self.follows = SimpleNamespace(latent_dim=4), 3, follows

        def mapping(self, z, emotion):  # (B, latent) -> (B, 3) one-hot style of the target
            return torch.nn.functional.one_hot(emotion, 3).float()

        def translate(self, codes, style, neutral=None):  # component k lifted for target k, or the source as is
            return codes + 5 * style[:, None, :] if self.follows else codes

    judge = SimpleNamespace(predict=lambda codes, baseline=None: codes.mean(axis=1).argmax(axis=1))
    windows = np.zeros((6, 10, 3), np.float32)
    windows[:, :, 0] = 1.0  # every source window reads as class 0
    assert window_target_accuracy(Nets(True), windows, judge) == 1.0
    assert window_target_accuracy(Nets(False), windows, judge) == pytest.approx(1 / 3)


def test_without_judge_relative_every_baseline_is_zero():
    from experiments.outlier_experiment import judge_baselines

    neutrals = {"A": np.full(3, 4.0, np.float32), "B": np.full(3, 4.0, np.float32)}
    baselines = judge_baselines(neutrals, relative=False)
    assert sorted(baselines) == ["A", "B"] and all(np.array_equal(b, np.zeros(3)) for b in baselines.values())
    assert judge_baselines(neutrals)["A"] == pytest.approx([4.0, 4.0, 4.0])


def test_a_relative_judge_reads_a_new_identity_that_the_raw_codes_hide():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    identity = np.repeat(np.array([[-2.0, 0, 0, 0], [2.0, 0, 0, 0], [0, 0, 0, 6.0]]), 200, axis=0)  # actor 2 is new
    codes = rng.normal(0, 0.2, (600, 10, 4)).astype(np.float32) + identity[:, None, :].astype(np.float32)
    codes[np.arange(600), :, labels + 1] += 1.0  # class 0 (neutral) lifts component 1, class k component k + 1
    baseline = (identity + np.eye(4)[1]).astype(np.float32)  # each actor's mean neutral code
    train, test = slice(0, 400), slice(400, 600)
    raw = train_code_classifier(codes[train], labels[train], 3, epochs=15)
    relative = train_code_classifier(codes[train], labels[train], 3, epochs=15, baseline=baseline[train])
    assert np.mean(relative.predict(codes[test], baseline[test]) == labels[test]) > 0.95
    assert np.mean(raw.predict(codes[test]) == labels[test]) < 0.8


def test_the_judge_is_trained_once_and_retrained_when_its_data_change(tmp_path, monkeypatch):
    import experiments.code_classifier as module

    rng = np.random.default_rng(1)
    codes, labels = rng.normal(size=(40, 5, 3)).astype(np.float32), rng.integers(0, 2, 40)
    first = module.cached_code_classifier(tmp_path / "judge.pt", codes, labels, 2, epochs=2)
    monkeypatch.setattr(module, "train_code_classifier", lambda *a, **k: pytest.fail("trained again"))
    again = module.cached_code_classifier(tmp_path / "judge.pt", codes, labels, 2, epochs=2)
    assert np.array_equal(first.predict(codes), again.predict(codes))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    for changed in ({"labels": 1 - labels}, {"epochs": 3}):
        with pytest.raises(pytest.fail.Exception, match="trained again"):
            module.cached_code_classifier(tmp_path / "judge.pt", codes, changed.get("labels", labels), 2,
                                          epochs=changed.get("epochs", 2))
    old = tmp_path / "old.pt"  # the first key (the calls above failed before saving), without the width
    torch.save({"key": torch.load(tmp_path / "judge.pt", weights_only=True)["key"], "state": first.state_dict()}, old)
    with pytest.raises(pytest.fail.Exception, match="trained again"):
        module.cached_code_classifier(old, codes, labels, 2, epochs=2)


def test_arms_follow_the_scorers_and_plain_ned_alone_needs_no_lambda_table():
    from experiments.outlier_experiment import ExperimentConfig, arm_name

    two = {"fer": {"lambdas": "f/windows.csv", "scoring_config": "f.yaml"},
           "clip": {"lambdas": "c/windows.csv", "scoring_config": "c.yaml", "training_config": "t.yaml"}}
    assert ExperimentConfig(arms=("none",)).scorers_used == ()
    assert ExperimentConfig(scorers=two, arms=("none", "mean_clip")).scorers_used == ("clip",)
    # the oracle reweights the first scorer's windows
    assert ExperimentConfig(scorers=two, arms=("oracle", "lambda_clip")).scorers_used == ("clip", "fer")
    assert ExperimentConfig(scorers=two).valid_arms == ("none", "lambda_fer", "lambda_clip", "oracle", "mean_fer",
                                                        "mean_clip")
    with pytest.raises(ValueError, match="arms must be some of none, lambda_fer, oracle, mean_fer, not lambda_clip"):
        ExperimentConfig(arms=("lambda_clip",))
    with pytest.raises(UserError, match="scorers.clip: unknown key 'lamdas'"):
        ExperimentConfig(scorers={"clip": {"lamdas": "c.csv", "scoring_config": "c.yaml"}})
    with pytest.raises(UserError, match="give at least one scorer"):
        ExperimentConfig(scorers={}, arms=("oracle",)).scorers_used
    assert arm_name("mean_clip") == "NED + clip's mean lambda for all (control)"
    summary = summarise_runs({"none/seed0": {"code_judge_target_accuracy": 0.7}})
    text = table({"summary": summary, "code_judge": {"test_accuracy": 0.8}})  # no outlier detection without lambda
    assert "| code judge: target accuracy | 0.700 ± 0.000 |" in text and "precision" not in text


def test_runs_are_reused_only_for_the_same_setting_and_the_summary_is_never_overwritten(tmp_path, caplog):
    from experiments.outlier_experiment import ExperimentConfig, arm_fingerprint, experiment_fingerprint, finished_runs

    (tmp_path / "truth.csv").write_text("path,actor\n")
    training = tmp_path / "training.yaml"
    training.write_text("train: {epochs: 8}\n")
    config = ExperimentConfig(data=str(tmp_path), training_config=str(training), arms=("none",))
    fingerprint = experiment_fingerprint(config)
    assert experiment_fingerprint(replace(config, seeds=(7,), output_dir="elsewhere", arms=("oracle",))) == fingerprint
    assert experiment_fingerprint(replace(config, judge_hidden=128)) != fingerprint
    assert experiment_fingerprint(replace(config, training_overrides=("optim.lr=2e-4",))) != fingerprint
    clip = tmp_path / "S001" / "video" / "front" / "sad" / "level_1" / "001.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"frames")  # the same truth.csv and configs, other pixels: another setting
    with_clip = experiment_fingerprint(config)
    assert with_clip != fingerprint
    clip.write_bytes(b"framez")
    assert experiment_fingerprint(config) != with_clip
    clip.unlink()
    assert experiment_fingerprint(config) == fingerprint
    training.write_text("train: {epochs: 9}\n")
    assert experiment_fingerprint(config) != fingerprint

    table = tmp_path / "windows.csv"  # an arm's fingerprint follows its lambdas, window and hop, not other columns
    (tmp_path / "scores.json").write_text(json.dumps({"window": 10, "hop": 1}))
    table.write_text("path,start,lambda,probability\na.mp4,0,0.5,0.5\n")
    with_table = arm_fingerprint("f", table)
    assert with_table != arm_fingerprint("f", None) != arm_fingerprint("g", None)
    table.write_text("path,start,lambda\na.mp4,0,0.5\n")
    assert arm_fingerprint("f", table) == with_table
    table.write_text("path,start,lambda\na.mp4,0,0.4\n")
    assert arm_fingerprint("f", table) != with_table

    saved = tmp_path / "summary.json"
    saved.write_text(json.dumps({"fingerprint": fingerprint, "runs": {"none/seed0": {"m": 1.0}, "mean_fer/seed0": {}},
                                 "curves": {"none/seed0": {"iteration": [1], "target_accuracy": [0.5]}},
                                 "run_fingerprints": {"none/seed0": "a", "mean_fer/seed0": "b"}}))
    earlier = finished_runs(saved, fingerprint, {"none": "a"}, keep=True)  # mean_fer is not run now: kept as it is
    assert earlier["runs"] == {"none/seed0": {"m": 1.0}, "mean_fer/seed0": {}}
    assert earlier["curves"]["none/seed0"]["iteration"] == [1] and earlier["run_fingerprints"]["mean_fer/seed0"] == "b"
    assert finished_runs(tmp_path / "missing.json", fingerprint, {})["runs"] == {}
    assert finished_runs(saved, "other", {})["runs"] == {} and "not reused" in caplog.text
    with pytest.raises(UserError, match="holds the runs of another setting"):
        finished_runs(saved, "other", {}, keep=True)
    assert set(finished_runs(saved, fingerprint, {"mean_fer": "c"})["runs"]) == {"none/seed0"}  # another table
    with pytest.raises(UserError, match="mean_fer/seed0 was made with another lambda table, reconstruction or judge"):
        finished_runs(saved, fingerprint, {"mean_fer": "c"}, keep=True)


def test_a_summary_of_this_setting_from_other_clip_bytes_is_compared_with_not_overwritten(tmp_path, caplog):
    from experiments.outlier_experiment import (ExperimentConfig, experiment_fingerprint, local_summary,
                                                setting_fingerprint, summarise_runs, summary_comparison)

    committed = tmp_path / "committed.json"
    config = ExperimentConfig(**experiment_setting(tmp_path), output_dir=str(tmp_path / "out"),
                              summary_file=str(committed), arms=("none",))
    setting, fingerprint = setting_fingerprint(config), experiment_fingerprint(config)
    assert local_summary(config) == (config, None)  # no summary yet: it is written where the config says
    committed.write_text(json.dumps({"fingerprint": fingerprint, "setting_fingerprint": setting}))
    assert local_summary(config) == (config, None)  # this very data: resumed in place

    experiment_clip(tmp_path).write_bytes(b"framez")  # the same configs, other bytes (another CPU's float paths)
    assert setting_fingerprint(config) == setting and experiment_fingerprint(config) != fingerprint
    here, reference = local_summary(config)
    assert (here.summary_file, reference) == (str(tmp_path / "out" / "summary.json"), committed)
    assert replace(here, summary_file=config.summary_file) == config and "not reused" in caplog.text
    (tmp_path / "edit.yaml").write_text("renderer: flame\n")  # the edit config SynthMEAD draws with is the setting's
    assert setting_fingerprint(config) != setting
    with pytest.raises(UserError, match="holds the runs of another setting"):
        local_summary(config)

    committed.write_text(json.dumps({
        "arms": {"none": {"code_judge_target_accuracy_mean": 0.70, "code_judge_target_accuracy_sd": 0.03,
                          "code_error_mean": 0.76, "code_error_sd": 0.01, "seeds": 3}},
        "code_judge": {"test_accuracy": 0.78}}))
    runs = {f"none/seed{seed}": {"code_judge_target_accuracy": accuracy, "code_error": 0.75}
            for seed, accuracy in ((0, 0.72), (1, 0.74))}
    text = summary_comparison({"summary": summarise_runs(runs), "code_judge": {"test_accuracy": 0.79}}, committed)
    assert "| NED (no lambda) | 2 / 3 | 0.730 ± 0.010 | 0.700 ± 0.030 | +0.030 | 0.750 ± 0.000 | 0.760 ± 0.010 " \
           "| -0.010 |" in text
    assert "here 0.790, there 0.780" in text


def test_runs_pair_only_with_runs_made_from_the_same_reconstructions_and_judge():
    from experiments.code_classifier import CodeClassifier
    from experiments.outlier_experiment import derived_inputs_fingerprint

    torch.manual_seed(0)
    judge, codes = CodeClassifier(3, 2, hidden=4), np.zeros((2, 5, 3), np.float32)
    same = derived_inputs_fingerprint(judge, codes, codes[:1])
    assert derived_inputs_fingerprint(judge, codes.copy(), codes[:1].copy()) == same
    nudged = codes.copy()
    nudged[1, 4, 2] = 1e-6  # one component of one frame, by 1e-6
    assert derived_inputs_fingerprint(judge, nudged, codes[:1]) != same
    with torch.no_grad():
        judge.head.bias[0] += 1e-6  # a judge trained to other weights
    assert derived_inputs_fingerprint(judge, codes, codes[:1]) != same


def test_parallel_runs_are_the_pending_ones_seed_by_seed():
    from experiments.outlier_experiment import ExperimentConfig, pending_runs

    config = ExperimentConfig(arms=("none", "oracle"), seeds=(0, 1), output_dir="out/x", latent_draws=8)
    finished = {"runs": {"none/seed0": {}, "oracle/seed2": {}, "oracle/seed1": {}},
                "run_latent_draws": {"none/seed0": 8, "oracle/seed2": 8, "oracle/seed1": 1}}
    jobs = pending_runs(config, finished)  # oracle/seed1 was judged with one draw: judged again
    assert [(job.arms, job.seeds) for job in jobs] == [(("oracle",), (0,)), (("none",), (1,)), (("oracle",), (1,))]
    assert pending_runs(replace(config, latent_draws=1), finished)[-1].arms == ("none",)
    assert {job.output_dir for job in jobs} == {"out/x"}  # one folder, whose results every process merges


def test_runs_of_two_settings_in_one_output_folder_train_in_their_own_folders(tmp_path):
    """A training override changes the folder a run checkpoints in (before, a run with another override resumed the
    first one's last checkpoint); the same setting finds its own folder again, to resume it."""
    from experiments.outlier_experiment import ExperimentConfig, arm_fingerprint, experiment_fingerprint, run_folder

    (tmp_path / "truth.csv").write_text("path,actor\n")
    training = tmp_path / "training.yaml"
    training.write_text("train: {epochs: 8}\n")
    config = ExperimentConfig(data=str(tmp_path), training_config=str(training), arms=("none",))
    decayed = replace(config, training_overrides=("train.decay_epochs=6",))
    folder = run_folder(tmp_path / "out", "none/seed1", arm_fingerprint(experiment_fingerprint(config), None))
    assert folder.parent == tmp_path / "out" / "none" and folder.name.startswith("seed1-")
    assert folder == run_folder(tmp_path / "out", "none/seed1", arm_fingerprint(experiment_fingerprint(config), None))
    assert folder != run_folder(tmp_path / "out", "none/seed1", arm_fingerprint(experiment_fingerprint(decayed), None))


def test_the_committed_summary_gives_mean_and_sd_per_arm_and_its_table(tmp_path):
    from experiments.outlier_experiment import committed_summary, summary_table

    runs = {"none/seed0": {"code_judge_target_accuracy": 0.6, "mouth_r": 0.9},
            "none/seed1": {"code_judge_target_accuracy": 0.8, "mouth_r": 0.9}}
    results = {"fingerprint": "f", "runs": runs, "curves": {}, "code_judge": {"test_accuracy": 0.79},
               "summary": summarise_runs(runs)}
    summary = committed_summary(results)
    assert summary["arms"]["none"]["code_judge_target_accuracy_mean"] == pytest.approx(0.7)
    assert summary["arms"]["none"]["code_judge_target_accuracy_sd"] == pytest.approx(0.1)
    assert summary["arms"]["none"]["seeds"] == 2 and summary["scorers"] is None
    path = tmp_path / "ned_lambda.json"
    path.write_text(json.dumps(summary))
    assert "| code judge: target accuracy | 0.700 ± 0.100 |" in summary_table(path)
    with pytest.raises(UserError, match="no experiment summary"):
        summary_table(tmp_path / "none.json")
    with pytest.raises(UserError, match="no summary_file"):
        summary_table(None)


def test_code_spread_compares_the_actors_resting_codes_with_all_codes():
    from types import SimpleNamespace

    from experiments.outlier_experiment import code_spread
    from ned_outlier.data.ned_windows import actor_neutral_codes

    codes = np.zeros((4, 2, 1), np.float32)
    codes[:, :, 0] = [[0, 0], [4, 4], [2, 2], [6, 6]]  # actor A neutral 0, happy 4; actor B neutral 2, happy 6
    windows = SimpleNamespace(codes=codes, clip=np.array([0, 0, 1, 1]), emotion=np.array([0, 1, 0, 1]),
                              clip_paths=("A/a.mp4", "B/b.mp4"), emotions=("neutral", "happy"))
    spread = code_spread(actor_neutral_codes(windows)[1], windows.codes)
    assert spread["actors_neutral_sd"] == pytest.approx(1.0)  # neutral means 0 and 2
    assert spread["codes_sd"] == pytest.approx(np.std([0, 0, 4, 4, 2, 2, 6, 6]))


def test_emotion_directions_compare_each_person_with_the_training_actors_mean():
    from experiments.outlier_experiment import emotion_directions

    # happy moves A and B along x, C along y, the test actor T against x; the neutral windows are left out
    means = np.array([[1, 0], [1, 0], [0, 1], [-1, 0], [5, 5]], np.float64)
    emotion = np.array([1, 1, 1, 1, 0])
    actor = np.array(["A", "B", "C", "T", "A"])
    directions = emotion_directions(means, emotion, actor, ("neutral", "happy"), ("A", "B", "C"))
    assert set(directions) == {"happy"}
    # T against A + B + C = (2, 1): -2 / sqrt(5); A against B + C = (1, 1) and B alike: 1 / sqrt(2), C against
    # A + B = (2, 0): 0, so the training median is 1 / sqrt(2)
    assert directions["happy"]["actors"] == {"T": pytest.approx(-2 / np.sqrt(5))}
    assert directions["happy"]["train_median"] == pytest.approx(1 / np.sqrt(2))


def test_runs_saved_by_another_process_are_merged_not_lost(tmp_path):
    """Two processes on the same output_dir (seeds split between them): each save keeps the other's runs."""
    from experiments.outlier_experiment import ExperimentConfig, _save

    config = ExperimentConfig(seeds=(0, 1), arms=("none",), summary_file=str(tmp_path / "summary.json"))
    path = tmp_path / "results.json"
    results = lambda seed: {"fingerprint": "f", "code_judge": {}, "curves": {},  # noqa: E731
                            "runs": {f"none/seed{seed}": {"code_judge_target_accuracy": 0.5 + seed / 10}},
                            "scorers": {f"scorer{seed}": {"precision": seed}}}
    _save(results(0), config, path)  # the first process finishes seed 0
    # the second, started before that on seed 1 alone (as `--set seeds=[1]` or a process of --jobs), finishes it
    _save(results(1), replace(config, seeds=(1,)), path)
    for saved in (path, tmp_path / "summary.json"):
        assert set(json.loads(saved.read_text())["runs"]) == {"none/seed0", "none/seed1"}
    assert json.loads((tmp_path / "summary.json").read_text())["scorers"] == {"scorer0": {"precision": 0},
                                                                               "scorer1": {"precision": 1}}
    summary = json.loads((tmp_path / "summary.json").read_text())["arms"]["none"]
    assert summary["seeds"] == 2 and summary["code_judge_target_accuracy_mean"] == pytest.approx(0.55)
    other = {**results(2), "fingerprint": "other"}  # a file of another setting is not merged into this one
    path.write_text(json.dumps(other))
    _save(results(0), replace(config, summary_file=None), path)
    assert set(json.loads(path.read_text())["runs"]) == {"none/seed0"}


def test_arms_are_compared_with_plain_ned_seed_by_seed(tmp_path):
    from experiments.outlier_experiment import committed_summary, paired_differences, summary_table

    runs = {f"{arm}/seed{seed}": {"code_judge_target_accuracy": accuracy, "code_error": error}
            for arm, seed, accuracy, error in [("none", 0, 0.5, 0.9), ("none", 1, 0.7, 0.8),
                                               ("lambda_fer", 0, 0.6, 0.7), ("lambda_fer", 1, 0.6, 0.9),
                                               ("oracle", 1, 0.9, 0.8)]}
    paired = paired_differences(runs)
    assert set(paired) == {"lambda_fer", "oracle"}  # plain NED is not compared with itself
    assert paired["lambda_fer"]["code_judge_target_accuracy"]["values"] == pytest.approx([0.1, -0.1])
    assert paired["lambda_fer"]["code_judge_target_accuracy"]["mean"] == pytest.approx(0.0)
    assert paired["lambda_fer"]["code_error"]["values"] == pytest.approx([-0.2, 0.1])
    assert paired["oracle"]["code_judge_target_accuracy"]["values"] == pytest.approx([0.2])  # seed 1 only
    results = {"fingerprint": "f", "runs": runs, "curves": {}, "code_judge": {"test_accuracy": 0.8},
               "summary": summarise_runs(runs)}
    summary = committed_summary(results)
    assert summary["paired_vs_plain"]["lambda_fer"]["code_error_minus_plain_mean"] == pytest.approx(-0.05)
    path = tmp_path / "ned_lambda.json"
    path.write_text(json.dumps(summary))
    text = summary_table(path)
    assert "| paired difference from plain NED, same seed (mean ± sd) | NED + fer lambda | NED + truth as" in text
    assert "| target accuracy | +0.000 ± 0.100 (+0.100, -0.100) | +0.200 ± 0.000 (+0.200) |" in text


@pytest.mark.slow
def test_a_scorer_made_here_is_trained_on_its_emotion_set_before_it_scores(tmp_path):
    """caption-CLIP's path in the experiment (emotion set, training, scoring), with a small CNN in its place."""
    import csv

    from experiments.outlier_experiment import ExperimentConfig, prepare_scorers, prepare_synthmead

    (tmp_path / "set.yaml").write_text(
        "seed: 0\nemotions: [neutral, happy]\nintensities: [1.0]\ntest_identities: [astronaut]\n"
        "sources: {pexels: {media: 'asset:pexels_video', frames: 1}, astronaut: {media: 'skimage:astronaut'}}\n")
    faces, scorer = tmp_path / "faces", tmp_path / "scorer"
    options = "{num_classes: 7, hidden: 8, dropout: 0.0, input_size: 64}"
    (tmp_path / "train.yaml").write_text(
        f"model: {{name: cnn-mobilenetv2, options: {options}}}\n"
        f"data: {{train: {{layout: folders, root: {faces / 'train'}, split: ''}}, "
        f"val: {{layout: folders, root: {faces / 'test'}, split: ''}}, num_workers: 0}}\n"
        f"optim: {{name: adam, lr: 1.0e-3}}\ntrain: {{output_dir: {scorer}, epochs: 1, batch_size: 4}}\n")
    (tmp_path / "score.yaml").write_text(
        f"scorer: cnn-mobilenetv2\npretrained: {scorer / 'model.safetensors'}\noptions: {options}\n"
        "threshold: 0.6\nwindow: 10\nhop: 1\nframe_step: 1\n"
        "mead: {actors: [], view: front, levels: [3], include_neutral: true, emotions: [neutral, happy]}\n")
    spec = {"lambdas": str(tmp_path / "lambda" / "windows.csv"), "scoring_config": str(tmp_path / "score.yaml"),
            "emotion_set_config": str(tmp_path / "set.yaml"), "emotion_set": str(faces),
            "training_config": str(tmp_path / "train.yaml")}
    config = ExperimentConfig(data=str(tmp_path / "data"), scorers={"mine": spec}, arms=("mean_mine",),
                              synthmead_config=str(tiny_synthmead_config(tmp_path)))
    assert prepare_synthmead(config, progress=False) == [tmp_path / "data"]
    assert prepare_scorers(config, progress=False) == [faces, scorer, tmp_path / "lambda"]
    assert (faces / "manifest.csv").is_file() and (scorer / "model.safetensors").is_file()
    with open(tmp_path / "lambda" / "windows.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2 * (12 - 10 + 1)
    assert prepare_scorers(config, progress=False) == []
    (tmp_path / "lambda" / "windows.csv").unlink()  # a table made again reuses the trained scorer
    assert prepare_scorers(config, progress=False) == [tmp_path / "lambda"]
    untrained = {**spec, "training_config": None}
    (tmp_path / "lambda" / "windows.csv").unlink()
    (scorer / "model.safetensors").unlink()
    with pytest.raises(UserError, match="model.safetensors .*'s pretrained. is missing and scorers.mine names no"):
        prepare_scorers(replace(config, scorers={"mine": untrained}), progress=False)


def test_run_keys_read_back_as_their_arm_and_seed():
    from experiments.outlier_experiment import _arm_of, _seeds_of, run_key

    # the committed summaries are keyed this way: a changed format would orphan every finished run
    assert run_key("lambda_caption_clip", 2) == "lambda_caption_clip/seed2"
    keys = {run_key(arm, seed): {} for arm in ("none", "mean_seedless") for seed in (0, 11)}
    assert {_arm_of(key) for key in keys} == {"none", "mean_seedless"}
    assert _seeds_of(keys) == (0, 11)


def test_a_runs_latent_draws_are_its_seed_first_and_never_another_seeds():
    from experiments.outlier_experiment import ExperimentConfig, latent_draw_seeds

    assert latent_draw_seeds(0, 3) == [0, 10_000, 20_000]
    assert latent_draw_seeds(2, 2) == [2, 10_002]
    assert set(latent_draw_seeds(1, 50)).isdisjoint(latent_draw_seeds(2, 50))
    with pytest.raises(ValueError, match="latent_draws must be at least 1"):
        ExperimentConfig(latent_draws=0)


def test_code_measures_average_over_the_latent_draws(tmp_path):
    """Every draw translates every clip to every emotion with equally many windows, so two draws give the mean of
    each alone; the draws differ, so a measure that ignored all but one would fail."""
    from types import SimpleNamespace

    from ned_outlier.manipulator.ned.checkpoint import save_ned
    from ned_outlier.manipulator.ned.networks import NedNetworks
    from experiments.outlier_experiment import code_measures
    from tests.manipulator.test_ned_inference import EMOTIONS, SCHEMA, SMALL, source_params

    torch.manual_seed(0)
    channels = len(SCHEMA.mouth_names) + len(SCHEMA.expression_names)
    model = save_ned(NedNetworks(channels, len(EMOTIONS), SMALL), tmp_path / "ned.safetensors", SCHEMA, EMOTIONS)

    class FirstComponents:
        """A judge: the emotion whose component is the largest in the window's mean code."""
        scale = torch.ones(channels)

        def predict(self, windows, baseline=None):
            return np.argmax(windows.mean(axis=1)[:, :len(EMOTIONS)], axis=1)

    clips = [(SimpleNamespace(actor="A", path=tmp_path / f"{n}.mp4"), source_params(seed=n)) for n in range(2)]
    twins = {(clip.path, emotion): source_params(seed=5) for clip, _ in clips for emotion in EMOTIONS}
    measures = {tuple(draws): code_measures(model, list(draws), clips, FirstComponents(), EMOTIONS, twins)
                for draws in ((3,), (4,), (3, 4))}
    assert measures[(3,)]["code_error"] != measures[(4,)]["code_error"]
    for name in ("code_judge_target_accuracy", "code_error", "mouth_r"):
        assert measures[(3, 4)][name] == pytest.approx((measures[(3,)][name] + measures[(4,)][name]) / 2)
    assert measures[(3, 4)]["source_code_error"] == pytest.approx(measures[(3,)]["source_code_error"])


def test_a_run_judged_again_by_another_process_replaces_the_stale_one(tmp_path):
    """A worker that loaded a run judged with one draw saves after another worker judged it with eight: the eight
    stay. A run of a file from before `latent_draws` counts as judged with one."""
    from experiments.outlier_experiment import finished_runs, judged, merge_runs

    def results(value, draws):
        return {"runs": {"none/seed0": {"m": value}}, "curves": {}, "run_fingerprints": {"none/seed0": "a"},
                "run_latent_draws": {"none/seed0": draws}, "scorers": {}}

    mine = results(0.5, 1)
    merge_runs(mine, results(0.6, 8), latent_draws=8)
    assert mine["runs"]["none/seed0"] == {"m": 0.6} and judged(mine, "none/seed0", 8)
    merge_runs(mine, results(0.7, 8), latent_draws=8)  # both judged alike: the own one stays
    merge_runs(mine, results(0.4, 1), latent_draws=8)  # an older judgement never replaces a newer one
    assert mine["runs"]["none/seed0"] == {"m": 0.6}
    old = tmp_path / "results.json"
    old.write_text(json.dumps({"fingerprint": "f", "runs": {"none/seed0": {"m": 0.3}},
                               "run_fingerprints": {"none/seed0": "a"}}))
    earlier = finished_runs(old, "f", {"none": "a"})
    assert earlier["run_latent_draws"] == {"none/seed0": 1} and not judged(earlier, "none/seed0", 8)
