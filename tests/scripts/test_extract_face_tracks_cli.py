"""scripts/extract_face_tracks.py as a user runs it: a video without faces is skipped beside one with faces, and
requests that can give nothing are one-line errors."""

import pytest

from ned_outlier.assets import asset_path

from cli_checks import assert_one_line_error, load_script, run, run_with_output


@pytest.fixture(scope="module")
def script():
    return load_script("extract_face_tracks")


@pytest.mark.slow
def test_skips_a_video_without_faces_and_reports_the_rest(script, capfd, tmp_path):
    code, out, err = run_with_output(script, capfd, asset_path("single_face_video"), asset_path("no_face_video"),
                                     "--out", tmp_path, "--quiet")
    assert code == 0, err
    assert "skipped" in err and "no_face" in err
    assert "single_face: 1 people" in out and "from 1 videos" in out
    assert (tmp_path / "single_face" / "tracks.csv").is_file() and not (tmp_path / "no_face").exists()


@pytest.mark.parametrize("make, fragments", [
    (lambda tmp: [tmp / "missing.mp4"], ["no face tracks from any of the 1 videos"]),
    (lambda tmp: [asset_path("no_face_video")], ["no face tracks from any"]),
    (lambda tmp: [tmp / "a" / "clip.mp4", tmp / "b" / "clip.mp4"], ["two videos are named 'clip'"]),
])
def test_requests_that_give_nothing_are_one_line_errors(script, capfd, tmp_path, make, fragments):
    code, err = run(script, capfd, *make(tmp_path), "--out", tmp_path / "tracks", "--quiet")
    assert_one_line_error(code, err, *fragments)
