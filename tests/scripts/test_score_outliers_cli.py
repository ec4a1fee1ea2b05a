"""scripts/score_outliers.py as a user runs it: the offline default scorer on a tiny MEAD-layout set, and one-line
errors."""

import csv

import pytest

from cli_checks import assert_one_line_error, load_script, run, run_with_output


@pytest.fixture(scope="module")
def script():
    return load_script("score_outliers")


@pytest.mark.slow
def test_the_packaged_classifier_scores_every_window(script, tiny_mead, tmp_path, capfd):
    code, out, err = run_with_output(script, capfd, tiny_mead, "--out", tmp_path, "--quiet")
    assert code == 0, err
    assert "3 clips, 9 windows scored by fer2013-minixception" in out
    lambdas = [float(row["lambda"]) for row in csv.DictReader(open(tmp_path / "windows.csv"))]
    assert len(lambdas) == 9 and all(0 < v <= 1 for v in lambdas)
    assert (tmp_path / "hist_happy.png").stat().st_size > 1000


def test_missing_data_and_missing_clip_weights_are_one_line_errors(script, tiny_mead, tmp_path, capfd):
    code, err = run(script, capfd, tmp_path / "nothing", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "MEAD folder not found")
    code, err = run(script, capfd, tiny_mead, "--scorer", "clip", "--pretrained", tmp_path / "vit.bin",
                    "--out", tmp_path / "o")
    assert_one_line_error(code, err, "CLIP weights not found", "vit.bin")
    code, err = run(script, capfd, tiny_mead, "--scorer", "no-such-model", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "unknown model 'no-such-model'")


@pytest.mark.slow
def test_contempt_clips_are_left_out_by_the_default_config_and_refused_without_it(script, tiny_mead, tmp_path,
                                                                                  capfd, caplog):
    import shutil

    mead = shutil.copytree(tiny_mead, tmp_path / "mead")
    contempt = mead / "M001/video/front/contempt/level_3"
    contempt.mkdir(parents=True)
    shutil.copy(mead / "M001/video/front/happy/level_3/001.mp4", contempt / "001.mp4")
    code, out, err = run_with_output(script, capfd, mead, "--out", tmp_path / "o", "--quiet")
    assert code == 0, err
    assert "3 clips, 9 windows scored" in out and "left out 1 contempt clips" in caplog.text
    unfiltered = tmp_path / "all.yaml"
    unfiltered.write_text("mead: {emotions: []}\n")
    code, err = run(script, capfd, mead, "--config", unfiltered, "--out", tmp_path / "o2")
    assert_one_line_error(code, err, "the scorer has no class contempt", "mead.emotions")


@pytest.mark.slow
def test_a_set_with_a_truth_table_gets_lambdas_outlier_detection(script, tiny_mead, tmp_path, capfd):
    import json
    import shutil

    data = tmp_path / "synth"
    shutil.copytree(tiny_mead, data)
    (data / "truth.csv").write_text(
        "path,actor,label,rendered,intensity,kind,frames,onset_end,offset_start\n"
        "M001/video/front/happy/level_3/001.mp4,M001,happy,sad,1.0,wrong_label,12,0,12\n"
        "M001/video/front/sad/level_3/001.mp4,M001,sad,sad,1.0,clean,15,0,15\n")
    code, out, err = run_with_output(script, capfd, data, "--out", tmp_path / "o", "--quiet")
    assert code == 0, err
    detection = json.loads((tmp_path / "o" / "truth_detection.json").read_text())
    assert detection["windows"] == 9 and detection["true_outliers"] == 3  # the 3 windows of the mislabelled clip
    assert detection["per_kind"]["wrong_label"]["outlier_windows"] == 3
    assert "recall" in out and "wrong_label" in out
    assert f"with probability {detection['ranking_auc']:.3f} (0.5: chance)" in out
