"""Load FLAME 2020's `generic_model.pkl` from the user's own copy, without chumpy installed.

FLAME may not be redistributed (MPI licence), so nothing here downloads: a missing file is a one-line UserError that
says where the path is given and where to register.

The file is a Python 2 pickle (read with encoding='latin1') of a dict. Some of its arrays are chumpy `Ch` objects,
which pickle their value under the state key 'x'; J_regressor is a scipy.sparse csc matrix. The pickle is read by an
unpickler that builds nothing but numpy arrays and dtypes, scipy.sparse matrices, builtin sets and inert stand-ins
for chumpy's classes: any other class named in the file is refused, so no code from the file runs. Module names are
mapped between numpy 1 (`numpy.core.*`) and numpy 2 (`numpy._core.*`) both ways, and scipy's old module paths of the
sparse classes (`scipy.sparse.csc`, ...) to the `scipy.sparse` namespace.

The keys read, and their shapes in FLAME 2020 (V = 5023 vertices, F = 9976 triangles):
    v_template (V, 3)        the mean head
    shapedirs (V, 3, 400)    blendshapes: [..., 0:300] identity, [..., 300:400] expression
    posedirs (V, 3, 36)      pose correctives: 4 non-root joints x the 9 entries of (R - I), row-major
    J_regressor (5, V)       joints from vertices (sparse in the file, dense here)
    weights (V, 5)           linear blend skinning weights
    kintree_table (2, 5)     first row the parent of each joint; the root's is a sentinel (2**32 - 1)
    f (F, 3)                 triangles, vertex indices
Other keys of the file are ignored. The joints are, in order: global (root), neck, jaw, left eye, right eye.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import scipy.sparse

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.user_files import FLAME_REGISTRATION_URL, resolve_file, where_given

FLAME_MODEL_FLAG = "--flame-model"
FLAME_MODEL_CONFIG_KEY = "flame.flame_model"
FLAME_MODEL_ENV = "FLAME_MODEL_PATH"

IDENTITY_COMPONENTS = 300
EXPRESSION_COMPONENTS = 100
JOINT_NAMES = ("global", "neck", "jaw", "eye_left", "eye_right")
NUM_JOINTS = len(JOINT_NAMES)
POSE_BASIS = 9 * (NUM_JOINTS - 1)  # 36: (R - I) of each non-root joint

# Key -> shape; "V" is the number of vertices (v_template's first axis), "F" of triangles.
FLAME_LAYOUT: dict[str, tuple[int | str, ...]] = {
    "v_template": ("V", 3),
    "shapedirs": ("V", 3, IDENTITY_COMPONENTS + EXPRESSION_COMPONENTS),
    "posedirs": ("V", 3, POSE_BASIS),
    "J_regressor": (NUM_JOINTS, "V"),
    "weights": ("V", NUM_JOINTS),
    "kintree_table": (2, NUM_JOINTS),
    "f": ("F", 3),
}
INTEGER_KEYS = ("kintree_table", "f")

_NUMPY_CORE = "numpy._core" if importlib.util.find_spec("numpy._core") is not None else "numpy.core"
_NUMPY_CORE_NAMES = {"multiarray": {"_reconstruct", "scalar"}, "numeric": {"_frombuffer"}}
_SAFE_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),  # Python 2's name, then 3's
    ("__builtin__", "object"), ("builtins", "object"),
    ("__builtin__", "set"), ("builtins", "set"), ("__builtin__", "frozenset"), ("builtins", "frozenset"),
    ("_codecs", "encode"),  # how a protocol-2 pickle written by Python 3 stores bytes
}


def _how_to_get_flame() -> str:
    return (f"{where_given(FLAME_MODEL_FLAG, FLAME_MODEL_CONFIG_KEY, FLAME_MODEL_ENV)} (FLAME 2020's "
            f"generic_model.pkl comes with registration at {FLAME_REGISTRATION_URL}; nothing is downloaded)")


def resolve_flame_path(path: str | os.PathLike | None = None) -> Path:
    """FLAME's generic_model.pkl: `path`, else FLAME_MODEL_PATH; UserError when neither names an existing file."""
    return resolve_file(path, "FLAME model", FLAME_MODEL_ENV, _how_to_get_flame())


class ChumpyStandIn:
    """What a pickled chumpy object becomes: nothing but its pickled state (a plain Ch keeps its array under 'x')."""

    def __setstate__(self, state) -> None:
        self.state = state


class RefusedClass(pickle.UnpicklingError):
    """The pickle names a class or function that is not FLAME data."""


class FlameUnpickler(pickle.Unpickler):
    """An unpickler for FLAME's model file (module docstring): chumpy classes become ChumpyStandIn, numpy's core
    modules are renamed to this numpy's, scipy.sparse's matrix classes come from `scipy.sparse`; anything else is
    refused with RefusedClass."""

    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return ChumpyStandIn
        parts = module.split(".")
        if parts[:2] == ["scipy", "sparse"]:
            found = getattr(scipy.sparse, name, None)
            if isinstance(found, type) and issubclass(found, (scipy.sparse.spmatrix, scipy.sparse.sparray)):
                return found
        elif parts[:2] in (["numpy", "core"], ["numpy", "_core"]):
            if name in _NUMPY_CORE_NAMES.get(".".join(parts[2:]), ()):
                return super().find_class(".".join([_NUMPY_CORE, *parts[2:]]), name)
        elif (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise RefusedClass(f"{module}.{name}")


def unpickle(path: Path, what: str, how: str, unpickler: type[pickle.Unpickler] = FlameUnpickler,
             skip_header: Callable[[BinaryIO], object] | None = None) -> object:
    """The object pickled in `path` (after the header that `skip_header` reads, if any), read with `unpickler`
    (latin1); a one-line UserError saying why when it cannot be, followed by `how`."""
    try:
        with open(path, "rb") as file:
            if skip_header is not None:
                skip_header(file)
            return unpickler(file, encoding="latin1").load()
    except RefusedClass as refused:
        raise UserError(f"{what} {path} holds a pickled {refused}, which is not the data expected there (numpy, "
                        f"scipy.sparse, torch tensors or chumpy arrays); it was not run: {how}") from refused
    except Exception as error:
        raise UserError(f"cannot read the {what} {path} ({one_line(error)}): {how}") from error


def one_line(error: BaseException) -> str:
    """The error's type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"


def _array(value: object) -> np.ndarray | None:
    """A file value as a numpy array: a chumpy stand-in's 'x', a sparse matrix made dense; None if not an array."""
    if isinstance(value, ChumpyStandIn):
        state = getattr(value, "state", None)
        value = state.get("x") if isinstance(state, dict) else None
    if scipy.sparse.issparse(value):
        value = value.toarray()
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        return None
    return value


def _describe(value: object) -> str:
    if isinstance(value, ChumpyStandIn):
        return "a chumpy object with no stored array 'x'"
    if isinstance(value, np.ndarray):
        return f"an array of {value.dtype} values"
    return f"a {type(value).__name__}"


def _shape_text(layout: tuple[int | str, ...]) -> str:
    return "(" + ", ".join(map(str, layout)) + ")"


@dataclass(frozen=True, eq=False)
class FlameModel:
    """FLAME's arrays, named as the file's keys (module docstring); float32 but kintree_table and f (int64).

    v_template (V, 3), shapedirs (V, 3, 400), posedirs (V, 3, 36), J_regressor (5, V) dense, weights (V, 5),
    kintree_table (2, 5) (root's parent: the file's sentinel), f (F, 3); `path` the file read."""

    path: Path
    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    kintree_table: np.ndarray
    f: np.ndarray

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def n_shape(self) -> int:
        """Identity blendshapes in the file: shapedirs[..., :n_shape]."""
        return IDENTITY_COMPONENTS

    @property
    def n_expression(self) -> int:
        """Expression blendshapes in the file: shapedirs[..., n_shape:]."""
        return self.shapedirs.shape[2] - IDENTITY_COMPONENTS

    @property
    def parents(self) -> np.ndarray:
        """(5,) int64: the parent joint of each joint, -1 for the root."""
        parents = self.kintree_table[0].copy()
        parents[0] = -1
        return parents


def _checked(found: dict, path: Path) -> dict[str, np.ndarray]:
    """FLAME_LAYOUT's arrays of `found`, converted; a one-line UserError naming the first key off the layout."""
    how = _how_to_get_flame()
    arrays: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {}
    for key, layout in FLAME_LAYOUT.items():
        if key not in found:
            raise UserError(f"FLAME model {path} has no key {key!r} (keys: {', '.join(sorted(map(str, found)))}); "
                            f"not FLAME 2020's generic_model.pkl? {how}")
        array = _array(found[key])
        if array is None:
            raise UserError(f"FLAME model {path}: key {key!r} is {_describe(found[key])}, not a numeric array; "
                            f"not FLAME 2020's generic_model.pkl? {how}")
        matches = array.ndim == len(layout)
        for size, expected in zip(array.shape, layout):
            matches = matches and size == (sizes.setdefault(expected, size) if isinstance(expected, str)
                                           else expected)
        if not matches:
            known = "".join(f", {name} = {size}" for name, size in sizes.items() if name in layout)
            raise UserError(f"FLAME model {path}: key {key!r} has shape {array.shape}, expected "
                            f"{_shape_text(layout)}{known}; not FLAME 2020's generic_model.pkl? {how}")
        if key in INTEGER_KEYS and array.dtype.kind not in "iu":
            raise UserError(f"FLAME model {path}: key {key!r} holds {array.dtype} values, not integers; {how}")
        arrays[key] = array
    faces, parents = arrays["f"], arrays["kintree_table"][0, 1:].astype(np.int64)
    if faces.size and faces.max() >= sizes["V"]:
        raise UserError(f"FLAME model {path}: key 'f' names vertex {int(faces.max())} of {sizes['V']}; {how}")
    if not all(0 <= parent < joint for joint, parent in enumerate(parents, start=1)):
        raise UserError(f"FLAME model {path}: key 'kintree_table' has parents {parents.tolist()} for joints 1-4, "
                        f"not a tree with each parent before its child; {how}")
    return arrays


def load_flame_model(path: str | os.PathLike | None = None) -> FlameModel:
    """FLAME 2020's model from the user's generic_model.pkl; `path` None reads FLAME_MODEL_PATH. UserError when the
    file is missing, unreadable or not FLAME's layout (the first wrong key named)."""
    path = resolve_flame_path(path)
    found = unpickle(path, "FLAME model", _how_to_get_flame())
    if not isinstance(found, dict):
        raise UserError(f"FLAME model {path} holds a pickled {type(found).__name__}, not FLAME's dict of arrays: "
                        f"{_how_to_get_flame()}")
    arrays = _checked(found, path)
    return FlameModel(path=path, **{key: np.ascontiguousarray(value, np.int64 if key in INTEGER_KEYS else np.float32)
                                    for key, value in arrays.items()})
