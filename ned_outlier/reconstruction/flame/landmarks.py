"""FLAME's 68 facial landmarks from DECA's `landmark_embedding.npy`: points fixed on the mesh by barycentric
coordinates in its triangles, the jaw-line contour chosen by the head's yaw as DECA does.

    embedding = load_landmark_embedding(path)            # the user's file, ships with DECA's data
    landmarks = FlameLandmarks(embedding, model.f)
    points = landmarks(vertices, pose[:, :3])            # (B, V, 3), global rotation (B, 3) -> (B, 68, 3)

The file is what DECA reads with np.load(path, allow_pickle=True, encoding='latin1')[()]: a .npy holding one
pickled dict (the dynamic entries are torch tensors inside it). It is read here with a restricted unpickler that
builds nothing but numpy arrays and torch tensors (their storages read by torch.load(weights_only=True)), so no code
from the file runs. Keys and shapes:
    static_lmk_faces_idx (51,), static_lmk_bary_coords (51, 3)             iBUG points 18-68 (brows, nose, eyes,
                                                                            mouth), fixed on the mesh
    dynamic_lmk_faces_idx (79, 17), dynamic_lmk_bary_coords (79, 17, 3)    iBUG points 1-17 (jaw line), one row per
                                                                            yaw bin
    full_lmk_faces_idx (1, 68), full_lmk_bary_coords (1, 68, 3)            all 68 fixed on the mesh (DECA's 3D
                                                                            landmarks)

The yaw bin (DECA's FLAME._find_dynamic_lmk_idx_and_bcoords): the head's rotation is the global rotation composed
with the neck's, R = R_global @ R_neck; its yaw (rotation about y, degrees) is atan2(-R[2, 0], hypot(R[0, 0],
R[1, 0])), so an axis-angle (0, t, 0) has yaw t. The yaw clamped to [-39, 39] and rounded (half to even, as
torch.round) is the bin when >= 0; a negative yaw y is bin 39 - y (40..78).
"""

from __future__ import annotations

import collections
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.flame.layer import axis_angle_to_matrix
from ned_outlier.reconstruction.flame.model_file import FlameUnpickler, unpickle
from ned_outlier.reconstruction.user_files import resolve_file

LANDMARK_EMBEDDING_FLAG = "--landmark-embedding"
LANDMARK_EMBEDDING_CONFIG_KEY = "flame_fit.landmark_embedding"
LANDMARK_EMBEDDING_ENV = "FLAME_LANDMARK_EMBEDDING_PATH"
DECA_REGISTRATION_URL = "https://deca.is.tue.mpg.de"

CONTOUR_POINTS = 17
STATIC_POINTS = 51
LANDMARKS = CONTOUR_POINTS + STATIC_POINTS  # 68, iBUG order: the contour first
YAW_LIMIT = 39  # degrees
YAW_BINS = 2 * YAW_LIMIT + 1  # 79: yaw 0..39 in bins 0..39, yaw -1..-39 in bins 40..78

EMBEDDING_LAYOUT: dict[str, tuple[int, ...]] = {
    "static_lmk_faces_idx": (STATIC_POINTS,),
    "static_lmk_bary_coords": (STATIC_POINTS, 3),
    "dynamic_lmk_faces_idx": (YAW_BINS, CONTOUR_POINTS),
    "dynamic_lmk_bary_coords": (YAW_BINS, CONTOUR_POINTS, 3),
    "full_lmk_faces_idx": (1, LANDMARKS),
    "full_lmk_bary_coords": (1, LANDMARKS, 3),
}


def _how_to_get_embedding() -> str:
    return (f"give its path with {LANDMARK_EMBEDDING_FLAG}, the config key {LANDMARK_EMBEDDING_CONFIG_KEY}, or the "
            f"environment variable {LANDMARK_EMBEDDING_ENV} (landmark_embedding.npy ships with DECA's data, "
            f"registration at {DECA_REGISTRATION_URL}; nothing is downloaded)")


def resolve_landmark_embedding_path(path: str | os.PathLike | None = None) -> Path:
    """DECA's landmark_embedding.npy: `path`, else FLAME_LANDMARK_EMBEDDING_PATH; UserError when neither names an
    existing file."""
    return resolve_file(path, "FLAME landmark embedding", LANDMARK_EMBEDDING_ENV, _how_to_get_embedding())


def _storage_from_bytes(data: bytes):
    """A torch storage pickled inside a plain pickle (torch.save bytes), read weights-only."""
    return torch.load(io.BytesIO(data), weights_only=True)


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,  # a tensor's (empty) backward hooks
}


class EmbeddingUnpickler(FlameUnpickler):
    """FlameUnpickler that also rebuilds torch tensors, their storages read weights-only."""

    def find_class(self, module: str, name: str):
        if (module, name) in _TORCH_GLOBALS:
            return _TORCH_GLOBALS[module, name]
        return super().find_class(module, name)


def _skip_npy_header(file) -> None:
    """Read past a .npy header, which must announce a 0-d object array (what np.save writes for a dict): the pickle
    that follows is that array, its one element the dict."""
    version = np.lib.format.read_magic(file)
    shape, _, dtype = (np.lib.format.read_array_header_1_0(file) if version == (1, 0)
                       else np.lib.format.read_array_header_2_0(file))
    if dtype != object or shape != ():
        raise ValueError(f"it holds a {dtype} array of shape {shape}, not one pickled dict")


def _as_array(value: object) -> np.ndarray | None:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
        return None
    return value


@dataclass(frozen=True, eq=False)
class LandmarkEmbedding:
    """DECA's landmark embedding (module docstring): faces int64, barycentric coordinates float32.

    static_faces (51,), static_bary (51, 3); dynamic_faces (79, 17), dynamic_bary (79, 17, 3), one row per yaw bin;
    full_faces (68,), full_bary (68, 3) (the file's (1, 68) and (1, 68, 3)); `path` the file read."""

    path: Path
    static_faces: np.ndarray
    static_bary: np.ndarray
    dynamic_faces: np.ndarray
    dynamic_bary: np.ndarray
    full_faces: np.ndarray
    full_bary: np.ndarray


def load_landmark_embedding(path: str | os.PathLike | None = None) -> LandmarkEmbedding:
    """DECA's landmark_embedding.npy; `path` None reads FLAME_LANDMARK_EMBEDDING_PATH. UserError when the file is
    missing, unreadable or off the layout (the first wrong key named)."""
    how = _how_to_get_embedding()
    path = resolve_landmark_embedding_path(path)
    loaded = unpickle(path, "FLAME landmark embedding", how, EmbeddingUnpickler, _skip_npy_header)
    found = loaded[()] if isinstance(loaded, np.ndarray) and loaded.shape == () else loaded
    if not isinstance(found, dict):
        raise UserError(f"FLAME landmark embedding {path} holds a {type(found).__name__}, not DECA's dict: {how}")
    arrays: dict[str, np.ndarray] = {}
    for key, shape in EMBEDDING_LAYOUT.items():
        if key not in found:
            raise UserError(f"FLAME landmark embedding {path} has no key {key!r} (keys: "
                            f"{', '.join(sorted(map(str, found)))}): {how}")
        array = _as_array(found[key])
        if array is None or array.shape != shape:
            got = f"shape {array.shape}" if array is not None else f"a {type(found[key]).__name__}"
            raise UserError(f"FLAME landmark embedding {path}: key {key!r} has {got}, expected a numeric array of "
                            f"shape {shape}: {how}")
        if key.endswith("_faces_idx") and (array.dtype.kind not in "iu" or array.min() < 0):
            raise UserError(f"FLAME landmark embedding {path}: key {key!r} holds {array.dtype} values, not face "
                            f"indices: {how}")
        arrays[key] = array.astype(np.int64 if key.endswith("_faces_idx") else np.float32)
    return LandmarkEmbedding(
        path=path, static_faces=arrays["static_lmk_faces_idx"], static_bary=arrays["static_lmk_bary_coords"],
        dynamic_faces=arrays["dynamic_lmk_faces_idx"], dynamic_bary=arrays["dynamic_lmk_bary_coords"],
        full_faces=arrays["full_lmk_faces_idx"][0], full_bary=arrays["full_lmk_bary_coords"][0])


def barycentric_landmarks(vertices: torch.Tensor, faces: torch.Tensor, face_indices: torch.Tensor,
                          bary_coords: torch.Tensor) -> torch.Tensor:
    """Points given by barycentric coordinates in mesh triangles: vertices (B, V, 3), faces (F, 3) int64,
    face_indices (L,) or (B, L) int64, bary_coords (L, 3) or (B, L, 3) weights of each face's 3 corners in the
    faces' order -> (B, L, 3)."""
    batch = vertices.shape[0]
    face_indices = face_indices.expand(batch, -1) if face_indices.ndim == 1 else face_indices
    bary_coords = bary_coords.expand(batch, -1, -1) if bary_coords.ndim == 2 else bary_coords
    corners = faces[face_indices]  # (B, L, 3) vertex indices
    points = vertices[torch.arange(batch, device=vertices.device)[:, None, None], corners]  # (B, L, 3, 3)
    return torch.einsum("blc,blck->blk", bary_coords, points)


def head_yaw_degrees(global_pose: torch.Tensor, neck_pose: torch.Tensor | None = None) -> torch.Tensor:
    """The yaw (rotation about y, degrees) of R_global @ R_neck: global_pose (B, 3), neck_pose (B, 3) axis-angle
    (zero when None) -> (B,)."""
    rotation = axis_angle_to_matrix(global_pose)
    if neck_pose is not None:
        rotation = rotation @ axis_angle_to_matrix(neck_pose)
    return torch.rad2deg(torch.atan2(-rotation[:, 2, 0], torch.hypot(rotation[:, 0, 0], rotation[:, 1, 0])))


def contour_bins(yaw_degrees: torch.Tensor) -> torch.Tensor:
    """DECA's row of the dynamic contour table for each yaw (B,) degrees -> (B,) int64 in 0..78: the yaw clamped to
    [-39, 39] and rounded (half to even), y, itself when >= 0, else 39 - y."""
    rounded = torch.round(yaw_degrees.clamp(-YAW_LIMIT, YAW_LIMIT)).long()
    return torch.where(rounded >= 0, rounded, YAW_LIMIT - rounded)


class FlameLandmarks(nn.Module):
    """The 68 iBUG landmarks of FLAME meshes (module docstring), from a LandmarkEmbedding and the model's faces
    (F, 3). Buffers (not persistent): faces, static_faces, static_bary, dynamic_faces, dynamic_bary, full_faces,
    full_bary, shaped as in LandmarkEmbedding."""

    def __init__(self, embedding: LandmarkEmbedding, faces: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        faces = torch.as_tensor(faces, dtype=torch.int64)
        largest = max(int(embedding.static_faces.max()), int(embedding.dynamic_faces.max()),
                      int(embedding.full_faces.max()))
        if largest >= faces.shape[0]:
            raise UserError(f"FLAME landmark embedding {embedding.path} names face {largest}, but the FLAME model "
                            f"has {faces.shape[0]} faces: the two files do not belong together")
        self.register_buffer("faces", faces.clone(), persistent=False)
        for name in ("static_faces", "static_bary", "dynamic_faces", "dynamic_bary", "full_faces", "full_bary"):
            self.register_buffer(name, torch.from_numpy(getattr(embedding, name).copy()), persistent=False)

    def forward(self, vertices: torch.Tensor, global_pose: torch.Tensor,
                neck_pose: torch.Tensor | None = None) -> torch.Tensor:
        """DECA's `landmarks2d`: vertices (B, V, 3), global_pose (B, 3) and neck_pose (B, 3) axis-angle (zero when
        None) -> (B, 68, 3): the 17 contour points of the head's yaw bin, then the 51 static points."""
        bins = contour_bins(head_yaw_degrees(global_pose, neck_pose))
        contour = barycentric_landmarks(vertices, self.faces, self.dynamic_faces[bins], self.dynamic_bary[bins])
        static = barycentric_landmarks(vertices, self.faces, self.static_faces, self.static_bary)
        return torch.cat([contour, static], dim=1)

    def landmarks_3d(self, vertices: torch.Tensor) -> torch.Tensor:
        """DECA's `landmarks3d` (seletec_3d68): the 68 points fixed on the mesh, vertices (B, V, 3) -> (B, 68, 3)."""
        return barycentric_landmarks(vertices, self.faces, self.full_faces, self.full_bary)
