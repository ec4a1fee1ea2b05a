"""Synthetic stand-ins for FLAME 2020's generic_model.pkl and DECA's landmark_embedding.npy, with the real keys and
file formats but a few hundred vertices (the real files cannot be fetched: licence).

generic_model.pkl: a protocol-2 pickle of a dict whose v_template and shapedirs are chumpy Ch objects (a class
named chumpy.ch.Ch while pickling, state {'x': array, ...chumpy's bookkeeping}), J_regressor a scipy csc matrix,
the rest numpy arrays (float64, faces uint32, kintree_table int64 with the root's parent 2**32 - 1), plus the
unused keys J, bs_style and bs_type. By default the module names are rewritten to those of numpy 1 and scipy < 1.8
(numpy.core.multiarray, scipy.sparse.csc), as in a file pickled years ago.

The arrays are random but laid out for hand computation: joint j sits at template vertex j (J_regressor row j is 1
at vertex j), the skinning weights of each vertex are multiples of 1/8 that sum to exactly 1, and vertex JAW_VERTEX
is weighted fully to the jaw.

landmark_embedding.npy: np.save of DECA's dict, the dynamic entries torch tensors, the others numpy arrays.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse
import torch

from tests.reconstruction.deca_fixture import importable

NUM_VERTICES = 300
NUM_FACES = 500
SENTINEL = 2**32 - 1
PARENTS = (0, 1, 1, 1)  # of joints 1-4: neck <- global, jaw, eyes <- neck
JAW = 2
JAW_VERTEX = 10
WEIGHT_STEPS = 8  # skinning weights are multiples of 1/8
NUMPY1_NAMES = {b"cnumpy._core.multiarray\n": b"cnumpy.core.multiarray\n",
                b"cscipy.sparse._csc\n": b"cscipy.sparse.csc\n"}


class Ch:
    """Stands for chumpy.ch.Ch, whose pickled state is its __dict__ without the weak references: 'x' the array."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def __getstate__(self) -> dict:
        return {"x": self.x, "_dirty_vars": set(), "_itr": None, "_make_dense": False, "_make_sparse": False,
                "_depends_on_deps": {}}


def flame_arrays(num_vertices: int = NUM_VERTICES, num_faces: int = NUM_FACES, seed: int = 0) -> dict:
    """The file's keys -> values, in the file's dtypes (module docstring); J_regressor dense here."""
    rng = np.random.default_rng(seed)
    steps = rng.multinomial(WEIGHT_STEPS, np.full(5, 0.2), size=num_vertices)
    steps[JAW_VERTEX] = np.eye(5, dtype=steps.dtype)[JAW] * WEIGHT_STEPS
    regressor = np.zeros((5, num_vertices))
    regressor[np.arange(5), np.arange(5)] = 1.0
    template = rng.uniform(-0.1, 0.1, (num_vertices, 3))
    return {
        "v_template": template,
        "shapedirs": rng.normal(0, 1e-3, (num_vertices, 3, 400)),
        "posedirs": rng.normal(0, 1e-3, (num_vertices, 3, 36)),
        "J_regressor": regressor,
        "weights": steps / WEIGHT_STEPS,
        "kintree_table": np.array([[SENTINEL, *PARENTS], [0, 1, 2, 3, 4]], dtype=np.int64),
        "f": np.stack([rng.choice(num_vertices, 3, replace=False) for _ in range(num_faces)]).astype(np.uint32),
        "J": template[:5].copy(),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def write_flame_model(path: Path, arrays: dict | None = None, numpy1_names: bool = True) -> Path:
    """`arrays` (as flame_arrays gives them; flame_arrays() when None) pickled as generic_model.pkl is (module
    docstring)."""
    content = dict(flame_arrays() if arrays is None else arrays)
    for key in ("v_template", "shapedirs"):
        content[key] = Ch(content[key])
    if isinstance(content.get("J_regressor"), np.ndarray):
        content["J_regressor"] = scipy.sparse.csc_matrix(content["J_regressor"])
    with importable("chumpy.ch", Ch=Ch):
        data = pickle.dumps(content, protocol=2)
    if numpy1_names:
        for new, old in NUMPY1_NAMES.items():
            data = data.replace(new, old)
    path.write_bytes(data)
    return path


def landmark_embedding(num_faces: int = NUM_FACES, seed: int = 1) -> dict:
    """DECA's landmark-embedding dict for a mesh of `num_faces` faces: random faces, random barycentric coordinates
    (rows summing to 1); dynamic entries torch tensors (int64, float32), the others numpy (uint32, float64)."""
    rng = np.random.default_rng(seed)

    def bary(*shape: int) -> np.ndarray:
        weights = rng.uniform(0.1, 1.0, (*shape, 3))
        return weights / weights.sum(-1, keepdims=True)

    return {
        "static_lmk_faces_idx": rng.integers(0, num_faces, 51).astype(np.uint32),
        "static_lmk_bary_coords": bary(51),
        "dynamic_lmk_faces_idx": torch.from_numpy(rng.integers(0, num_faces, (79, 17))),
        "dynamic_lmk_bary_coords": torch.from_numpy(bary(79, 17)).float(),
        "full_lmk_faces_idx": rng.integers(0, num_faces, (1, 68)).astype(np.uint32),
        "full_lmk_bary_coords": bary(1, 68),
    }


def write_landmark_embedding(path: Path, embedding: dict) -> Path:
    """`embedding` saved as DECA's landmark_embedding.npy is: np.save of the dict (one pickled object)."""
    np.save(path, embedding, allow_pickle=True)
    return path


def one_line_error(load, path) -> str:
    """The message of the UserError `load(path)` raises (the test fails unless it raises one), checked to be one
    line."""
    import pytest

    from ned_outlier.errors import UserError

    with pytest.raises(UserError) as raised:
        load(path)
    message = str(raised.value)
    assert "\n" not in message
    return message
