"""scripts/run_ned_experiment.py as a user runs it without training: --report prints the committed summary's table,
and bad settings are one-line errors before any work starts."""

import json

import pytest

from cli_checks import assert_one_line_error, load_script, run, run_with_output


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
