"""NED's windows from reconstructed clips: only windows with the face in every frame, lambda from the table, the
mouth code first, and one schema for all clips."""


import numpy as np
import pytest

from ned_outlier.data.mead import MeadClip
from ned_outlier.data.ned_windows import build_windows, read_lambda_table
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
    table = tmp_path / "windows.csv"
    table.write_text("path,emotion,start,probability,lambda\nhappy/001.mp4,happy,0,0.3,0.3\n"
                     "happy/001.mp4,happy,1,0.9,1.0\nsad/001.mp4,sad,0,0.7,1.0\n")  # sad start 1 unscored
    windows = build_windows([happy, sad], [happy_path, sad_path], tmp_path, ("neutral", "happy", "sad"),
                            lambdas=read_lambda_table(table))
    assert windows.start.tolist() == [0, 1, 0] and windows.emotion.tolist() == [1, 1, 2]
    np.testing.assert_allclose(windows.weight, [0.3, 1.0, 1.0])
    np.testing.assert_allclose(windows.codes[1, :, :3], happy_params.mouth[1:11])  # mouth first
    np.testing.assert_allclose(windows.codes[1, :, 3:], happy_params.expression[1:11])
    plain = build_windows([happy, sad], [happy_path, sad_path], tmp_path, ("neutral", "happy", "sad"))
    assert plain.start.tolist() == [0, 1, 0, 1] and plain.weight.tolist() == [1.0] * 4 and plain.mouth_dims == 3


def test_missing_table_and_no_windows_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="lambda table not found"):
        read_lambda_table(tmp_path / "none.csv")
    clip, path, _ = saved_clip(tmp_path, "happy", "happy", 5)  # shorter than a window
    with pytest.raises(UserError, match="no 10-frame window"):
        build_windows([clip], [path], tmp_path, ("happy",))
