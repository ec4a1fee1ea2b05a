"""NED's windows from reconstructed clips: only windows with the face in every frame, lambda from the table, the
mouth code first, and one schema for all clips."""

import json

import numpy as np
import pytest

from ned_outlier.data.mead import MeadClip
from ned_outlier.data.ned_windows import actor_neutral_codes, build_windows, read_lambda_table, with_actor_neutral
from ned_outlier.errors import UserError
from tests.factories import face_params


def saved_clip(root, folder, emotion, frames, found=None, seed=0):
    rng = np.random.default_rng(seed)
    params = face_params(rng.normal(size=(frames, 17)), rng.normal(size=(frames, 3)), found)
    path = root / folder / "001.npz"
    path.parent.mkdir(parents=True)
    params.save(path)
    return MeadClip("M001", "front", emotion, 3, "001", root / folder / "001.mp4"), path, params


def test_windows_codes_labels_and_lambdas(tmp_path):
    found = np.ones(14, bool)
    found[11] = False  # no face at frame 11: windows 2, 3 and 4 cannot be used
    happy, happy_path, happy_params = saved_clip(tmp_path, "happy", "happy", 14, found)
    sad, sad_path, _ = saved_clip(tmp_path, "sad", "sad", 11, seed=1)
    table = lambda_table(tmp_path, "happy/001.mp4,happy,0,0.3,0.3\nhappy/001.mp4,happy,1,0.9,1.0\n"
                                   "sad/001.mp4,sad,0,0.7,1.0\n")  # sad start 1 unscored
    windows = build_windows([happy, sad], [happy_path, sad_path], tmp_path, ("neutral", "happy", "sad"),
                            lambdas=read_lambda_table(table))
    assert windows.start.tolist() == [0, 1, 0] and windows.emotion.tolist() == [1, 1, 2]
    assert windows.skipped == {"windows without the face in every frame": 3,
                               "windows without a lambda row (the scorer saw no face in one of their frames)": 1}
    np.testing.assert_allclose(windows.weight, [0.3, 1.0, 1.0])
    np.testing.assert_allclose(windows.codes[1, :, :3], happy_params.mouth[1:11])  # mouth first
    np.testing.assert_allclose(windows.codes[1, :, 3:], happy_params.expression[1:11])
    plain = build_windows([happy, sad], [happy_path, sad_path], tmp_path, ("neutral", "happy", "sad"))
    assert plain.start.tolist() == [0, 1, 0, 1] and plain.weight.tolist() == [1.0] * 4 and plain.mouth_dims == 3
    assert plain.skipped == {"windows without the face in every frame": 3}


def lambda_table(root, rows, window=10, hop=1):
    """windows.csv with `rows` and the scores.json of a scoring with `window` and `hop` beside it."""
    (root / "scores.json").write_text(json.dumps({"window": window, "hop": hop}))
    table = root / "windows.csv"
    table.write_text("path,emotion,start,probability,lambda\n" + rows)
    return table


def test_a_table_scored_with_other_windows_is_refused(tmp_path):
    clip, path, _ = saved_clip(tmp_path, "happy", "happy", 12)
    rows = "happy/001.mp4,happy,0,0.3,0.3\n"
    for window, hop, training_hop in [(8, 1, 1), (10, 2, 1), (10, 2, 3)]:
        table = read_lambda_table(lambda_table(tmp_path, rows, window, hop))
        with pytest.raises(UserError, match=f"scored with {window}-frame windows every {hop} frame.*training uses "
                                             f"10-frame windows every {training_hop}"):
            build_windows([clip], [path], tmp_path, ("happy",), hop=training_hop, lambdas=table)
    every_frame = read_lambda_table(lambda_table(tmp_path, rows + "happy/001.mp4,happy,2,0.8,1.0\n", 10, 1))
    windows = build_windows([clip], [path], tmp_path, ("happy",), hop=2, lambdas=every_frame)  # starts 0 and 2
    assert windows.start.tolist() == [0, 2] and windows.weight.tolist() == pytest.approx([0.3, 1.0])
    (tmp_path / "scores.json").unlink()
    with pytest.raises(UserError, match="no readable scores.json beside it"):
        read_lambda_table(tmp_path / "windows.csv")


def test_clips_without_a_face_are_counted(tmp_path):
    clip, path, _ = saved_clip(tmp_path, "happy", "happy", 11)
    faceless = MeadClip("M001", "front", "happy", 3, "002", tmp_path / "happy" / "002.mp4")
    other = MeadClip("M001", "front", "angry", 3, "003", tmp_path / "angry" / "003.mp4")  # not selected: not counted
    windows = build_windows([clip, faceless, other], [path, None, None], tmp_path, ("happy",))
    assert len(windows) == 2 and windows.skipped == {"clips without a face": 1}


def test_missing_table_and_no_windows_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="lambda table not found"):
        read_lambda_table(tmp_path / "none.csv")
    clip, path, _ = saved_clip(tmp_path, "happy", "happy", 5)  # shorter than a window
    with pytest.raises(UserError, match="no 10-frame window"):
        build_windows([clip], [path], tmp_path, ("happy",))


def test_each_window_gets_its_actors_mean_neutral_code():
    from types import SimpleNamespace

    codes = np.zeros((4, 2, 1), np.float32)
    codes[:, :, 0] = [[1, 3], [9, 9], [5, 5], [7, 7]]  # A neutral (mean 2), A happy, B neutral (5), B happy
    windows = SimpleNamespace(codes=codes, clip=np.array([0, 0, 1, 1]), emotion=np.array([0, 1, 0, 1]),
                              clip_paths=("A/video/neutral/001.mp4", "B/video/neutral/001.mp4"),
                              emotions=("neutral", "happy"))
    actor, means = actor_neutral_codes(windows)
    assert list(actor) == ["A", "A", "B", "B"]
    assert means["A"] == pytest.approx([2.0]) and means["B"] == pytest.approx([5.0])
    windows.emotion = np.array([0, 1, 1, 1])  # B has no neutral window left
    with pytest.raises(UserError, match="actor B has no neutral window"):
        actor_neutral_codes(windows)


def test_with_actor_neutral_sets_the_neutral_of_every_window(tmp_path):
    clips, paths = [], []
    for actor, offset in (("M001", 0.0), ("M002", 3.0)):
        for emotion, lift in (("neutral", 0.0), ("happy", 1.0)):
            path = tmp_path / actor / emotion / "001.npz"
            path.parent.mkdir(parents=True)
            face_params(np.full((12, 17), offset + lift), np.zeros((12, 3))).save(path)
            clips.append(MeadClip(actor, "front", emotion, 3, "001", path.with_suffix(".mp4")))
            paths.append(path)
    windows = with_actor_neutral(build_windows(clips, paths, tmp_path, ("neutral", "happy")))
    expected = np.where(windows.clip >= 2, 3.0, 0.0)  # clips 2 and 3 are M002's
    assert windows.neutral.shape == (len(windows), windows.codes.shape[2])
    assert np.allclose(windows.neutral[:, windows.mouth_dims:], expected[:, None])
