"""scripts/stills.py: bad requests are one-line errors."""

from cli_checks import assert_one_line_error, load_script, run
from factories import saved_params_of


def test_params_of_another_video_are_refused(capfd, tmp_path, testsrc):
    video = testsrc(tmp_path / "a.mp4", "-c:v", "libx264")
    longer = testsrc(tmp_path / "b.mp4", "-c:v", "libx264", seconds=2)
    params = saved_params_of(video, tmp_path / "a.npz")
    code, err = run(load_script("stills"), capfd, longer, "--params", params, "--frames", "0", "--out",
                    tmp_path / "s.png")
    assert_one_line_error(code, err, f"--params {params} do not belong to {longer}", "50 frames")
    assert not (tmp_path / "s.png").exists()
