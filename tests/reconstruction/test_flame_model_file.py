"""Reading FLAME's generic_model.pkl without chumpy, on a synthetic file in the real format: the arrays come back
exactly, a missing file or a file off the layout is a one-line error naming the key and where the file comes from,
and nothing else named in the pickle is built or run."""

from __future__ import annotations

import importlib.util
import os
import pickle
import socket
import sys

import numpy as np
import pytest

from ned_outlier.reconstruction.flame import FLAME_MODEL_ENV, load_flame_model, resolve_flame_path
from tests.reconstruction.flame_fixture import (NUM_FACES, NUM_VERTICES, SENTINEL, flame_arrays, one_line_error,
                                                write_flame_model)

URL = "https://flame.is.tue.mpg.de"


@pytest.fixture(scope="module")
def arrays():
    return flame_arrays()


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(FLAME_MODEL_ENV, raising=False)


def error_of(path) -> str:
    return one_line_error(load_flame_model, path)


@pytest.mark.parametrize("numpy1_names", [True, False])
def test_loads_the_arrays_without_chumpy(tmp_path, arrays, numpy1_names):
    path = write_flame_model(tmp_path / "generic_model.pkl", arrays, numpy1_names=numpy1_names)
    assert (b"cnumpy.core.multiarray\n" in path.read_bytes()) == numpy1_names
    assert importlib.util.find_spec("chumpy") is None
    model = load_flame_model(path)
    assert "chumpy" not in sys.modules
    assert model.path == path
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        value = getattr(model, key)
        assert value.dtype == np.float32, key
        np.testing.assert_array_equal(value, arrays[key].astype(np.float32), err_msg=key)
    assert model.f.dtype == np.int64 and model.kintree_table.dtype == np.int64
    np.testing.assert_array_equal(model.f, arrays["f"])
    assert model.kintree_table[0].tolist() == [SENTINEL, 0, 1, 1, 1]
    assert model.parents.tolist() == [-1, 0, 1, 1, 1]
    assert model.v_template.shape == (NUM_VERTICES, 3) and model.f.shape == (NUM_FACES, 3)
    assert (model.n_shape, model.n_expression, model.num_vertices) == (300, 100, NUM_VERTICES)


def test_the_path_may_come_from_the_environment(tmp_path, arrays, monkeypatch):
    path = write_flame_model(tmp_path / "generic_model.pkl", arrays)
    monkeypatch.setenv(FLAME_MODEL_ENV, str(path))
    assert resolve_flame_path(None) == path
    assert load_flame_model().v_template.shape == (NUM_VERTICES, 3)


def test_a_missing_file_fails_at_once_saying_where_to_get_it(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was tried")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    missing = tmp_path / "generic_model.pkl"
    for message in (error_of(missing), error_of(None)):
        assert FLAME_MODEL_ENV in message and "flame.flame_model" in message and URL in message
    assert str(missing) in error_of(missing) and "not found" in error_of(missing)
    assert error_of(None).startswith("no FLAME model given")
    monkeypatch.setenv(FLAME_MODEL_ENV, str(missing))
    assert str(missing) in error_of(None)
    assert "is a folder" in error_of(tmp_path)


@pytest.mark.parametrize("key, change, expected", [
    ("posedirs", None, "has no key 'posedirs'"),
    ("kintree_table", None, "has no key 'kintree_table'"),
    ("shapedirs", lambda a: a[:, :, :399], "key 'shapedirs' has shape (300, 3, 399), expected (V, 3, 400), V = 300"),
    ("J_regressor", lambda a: a[:, :-1], "key 'J_regressor' has shape (5, 299), expected (5, V), V = 300"),
    ("weights", lambda a: a[:, :4], "key 'weights' has shape (300, 4), expected (V, 5), V = 300"),
    ("f", lambda a: a[:, :2], "key 'f' has shape (500, 2), expected (F, 3)"),
    ("f", lambda a: a.astype(np.float64), "key 'f' holds float64 values, not integers"),
    ("f", lambda a: a + NUM_VERTICES, "key 'f' names vertex"),
    ("kintree_table", lambda a: np.array([[SENTINEL, 0, 3, 1, 1], [0, 1, 2, 3, 4]]), "parents [0, 3, 1, 1]"),
    ("weights", lambda a: "lbs", "key 'weights' is a str, not a numeric array"),
    ("v_template", lambda a: None, "key 'v_template' is a chumpy object with no stored array 'x'"),
])
def test_a_file_off_the_layout_is_refused_naming_the_key(tmp_path, arrays, key, change, expected):
    broken = dict(arrays)
    if change is None:
        del broken[key]
    else:
        broken[key] = change(broken[key])
    path = write_flame_model(tmp_path / "generic_model.pkl", broken)
    message = error_of(path)
    assert expected in message and str(path) in message
    assert FLAME_MODEL_ENV in message and URL in message


class Intruder:
    """Unpickling calls os.mkdir(marker)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_nothing_but_array_data_is_built_from_the_pickle(tmp_path, arrays):
    marker = tmp_path / "ran"
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({**arrays, "extra": Intruder(marker)}, protocol=2))
    message = error_of(path)
    assert "holds a pickled posix.mkdir" in message or "holds a pickled os.mkdir" in message
    assert not marker.exists()


def test_a_file_that_is_not_a_pickle_is_a_one_line_error(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"<html>not found</html>")
    message = error_of(path)
    assert message.startswith(f"cannot read the FLAME model {path}") and URL in message
    path.write_bytes(pickle.dumps([1, 2, 3]))
    assert "holds a pickled list, not FLAME's dict" in error_of(path)
