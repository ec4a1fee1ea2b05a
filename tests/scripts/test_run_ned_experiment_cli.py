"""scripts/run_ned_experiment.py as a user runs it without training: --report prints the committed summary's table,
and bad settings are one-line errors before any work starts."""

import json

import pytest

from cli_checks import assert_one_line_error, load_script, run, run_with_output
from factories import experiment_setting


@pytest.fixture(scope="module")
def script():
    return load_script("run_ned_experiment")


def test_report_prints_the_table_of_the_committed_summary(script, tmp_path, capfd):
    summary = tmp_path / "ned_lambda.json"
    runs = {f"none/seed{s}": {"code_judge_target_accuracy": v, "mouth_r": 0.97}
            for s, v in ((0, 0.53), (1, 0.39))}
    summary.write_text(json.dumps({"fingerprint": "f", "runs": runs, "code_judge": {"test_accuracy": 0.754}}))
    code, out, err = run_with_output(script, capfd, "--report", "--set", f"summary_file={summary}")
    assert code == 0, err
    assert "| code judge: target accuracy | 0.460 ± 0.070 |" in out
    assert "code judge accuracy on clean test windows 0.754." in out


def test_a_missing_summary_and_an_unknown_arm_are_one_line_errors(script, tmp_path, capfd):
    code, err = run(script, capfd, "--report", "--set", f"summary_file={tmp_path / 'none.json'}")
    assert_one_line_error(code, err, "no experiment summary at")
    code, err = run(script, capfd, "--set", "arms=[with_lamda]")
    assert_one_line_error(code, err, "arms must be some of")


def test_threads_or_jobs_below_one_are_a_one_line_error(script, capfd):
    code, err = run(script, capfd, "--threads", "0", "--set", "arms=[none]")
    assert_one_line_error(code, err, "--threads must be at least 1, got 0")
    code, err = run(script, capfd, "--jobs", "0", "--set", "arms=[none]")
    assert_one_line_error(code, err, "--jobs must be at least 1, got 0")


def test_latent_spread_needs_draws_and_finished_runs(script, tmp_path, capfd):
    code, err = run(script, capfd, "--latent-spread", "0")
    assert_one_line_error(code, err, "--latent-spread must be at least 1, got 0")
    code, err = run(script, capfd, "--latent-spread", "8", "--set", f"output_dir={tmp_path / 'empty'}")
    assert_one_line_error(code, err, "results.json is missing: the experiment has no finished runs there")


def test_a_summary_made_from_other_clip_bytes_is_left_alone_and_compared_with(script, tmp_path, capfd, monkeypatch):
    import experiments.outlier_experiment as experiment

    setting = experiment_setting(tmp_path)
    overrides = [f"{key}={value}" for key, value in setting.items()]
    config = experiment.load_experiment_config(script.DEFAULT_CONFIG, overrides)
    committed = tmp_path / "ned_lambda.json"
    committed.write_text(json.dumps({
        "fingerprint": "of other bytes", "setting_fingerprint": experiment.setting_fingerprint(config),
        "arms": {"none": {"code_judge_target_accuracy_mean": 0.70, "code_judge_target_accuracy_sd": 0.03,
                          "code_error_mean": 0.76, "code_error_sd": 0.01, "seeds": 3}},
        "code_judge": {"test_accuracy": 0.78}}))
    before, trained = committed.read_text(), []

    def run_experiment(config, progress=True):  # the runs of this machine, without training
        trained.append(config.summary_file)
        runs = {"none/seed0": {"code_judge_target_accuracy": 0.72, "code_error": 0.75}}
        return {"summary": experiment.summarise_runs(runs), "runs": runs, "code_judge": {"test_accuracy": 0.79}}

    made = []  # the summary_file each input step saw: the committed one is checked before the scorers' hours

    def prepare(config, progress=True):
        made.append(config.summary_file)
        return []

    monkeypatch.setattr(experiment, "prepare_synthmead", prepare)
    monkeypatch.setattr(experiment, "prepare_scorers", prepare)
    monkeypatch.setattr(experiment, "run_experiment", run_experiment)
    argv = [arg for override in overrides for arg in ("--set", override)]
    code, out, err = run_with_output(script, capfd, *argv, "--set", f"summary_file={committed}", "--set",
                                     f"output_dir={tmp_path / 'out'}", "--set", "arms=[none]", "--quiet")
    assert code == 0, err
    assert trained == [str(tmp_path / "out" / "summary.json")] and committed.read_text() == before
    assert made == [str(committed), str(tmp_path / "out" / "summary.json")]
    assert "| NED (no lambda) | 1 / 3 | 0.720 ± 0.000 | 0.700 ± 0.030 | +0.020 |" in out
