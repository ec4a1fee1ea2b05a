"""The bad-input matrix of issue 17 across the scripts that read a video: every broken input, to every script, is
one `error:` line naming the file and what is wrong with it, exit code 2, no traceback, and nothing written."""

import pytest

from cli_checks import assert_one_line_error, load_script, run

pytestmark = pytest.mark.slow

# script -> its command line around the video and `out`, the output (a file or a folder) that must not appear
COMMANDS = {
    "edit": lambda video, out: ["--emotion", "sad", video, "--out", out, "--quiet"],
    "reconstruct": lambda video, out: [video, "--out", out, "--quiet"],
    "evaluate": lambda video, out: [video, "--target", "happy", "--out", out, "--quiet"],
    "stills": lambda video, out: [video, "--out", out, "--quiet"],
}
OUTPUTS = {"edit": "edited.mp4", "reconstruct": "tracks", "evaluate": "scores", "stills": "stills.png"}


def missing(folder, ffmpeg):
    return folder / "missing.mp4"


def text_file(folder, ffmpeg):
    path = folder / "notes.mp4"
    path.write_text("not a video")
    return path


def empty_file(folder, ffmpeg):
    path = folder / "empty.mp4"
    path.write_bytes(b"")
    return path


def audio_only(folder, ffmpeg):
    return ffmpeg(folder / "sound.m4a", "-f", "lavfi", "-i", "sine", "-t", "1")


def zero_frames(folder, ffmpeg):
    return ffmpeg(folder / "none.mp4", "-f", "lavfi", "-i", "testsrc", "-frames:v", "0", "-movflags",
                  "frag_keyframe+empty_moov")


def truncated(folder, ffmpeg):
    whole = ffmpeg(folder / "whole.mp4", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-t", "1")
    path = folder / "cut.mp4"
    path.write_bytes(whole.read_bytes()[:400])  # the header's start only
    return path


INPUTS = {  # the broken input -> what its error line says besides the file's name
    missing: "no such file",
    text_file: "not a readable media file",
    empty_file: "not a readable media file",
    audio_only: "has no video stream",
    zero_frames: "contains no video frames",
    truncated: "not a readable media file",
}


@pytest.mark.parametrize("make", INPUTS, ids=[make.__name__ for make in INPUTS])
@pytest.mark.parametrize("name", COMMANDS)
def test_every_broken_video_is_one_line_to_every_script(name, make, capfd, tmp_path, ffmpeg):
    inputs, out = tmp_path / "inputs", tmp_path / OUTPUTS[name]
    inputs.mkdir()
    video = make(inputs, ffmpeg)
    before = sorted(path.name for path in inputs.iterdir())
    code, err = run(load_script(name), capfd, *COMMANDS[name](video, out))
    assert_one_line_error(code, err, video.name, INPUTS[make])
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]  # no output
    assert sorted(path.name for path in inputs.iterdir()) == before  # nothing written beside the input either
