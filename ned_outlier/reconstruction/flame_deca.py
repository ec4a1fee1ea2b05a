"""Backends `flame-deca` and `flame-emoca`: NED's own reconstruction, DECA's (or EMOCA's) coarse encoder regressing
FLAME's codes from each frame's 224 px face crop, the FLAME mesh posed from them, from the user's own files.

    config = ReconstructionConfig(backend="flame-deca", flame=FlameDecaConfig(deca_model="deca_model.tar",
                                  flame_model="generic_model.pkl"))
    params = reconstruct("video.mp4", config)       # FaceParams of flame_schema("flame-deca", V): 50 + 1 codes

The tracking is the project's (MTCNN boxes, smoothed; `ned_outlier.face`); each present frame's crop is DECA's from
the smoothed detector box (`deca.crop`), as DECA's test-time loader does with a detector. What FaceParams holds for
these backends:

  expression (T, 50)   FLAME's expression code exp[0:50] (DECA's; EMOCA's expression encoder's for flame-emoca);
  mouth (T, 1)         the jaw opening, pose[3] (the jaw's axis-angle x component): NED edits these 51 numbers;
  rotation (T, 3, 3)   DECA's global head rotation pose[0:3] as a matrix (model space: x right, y up, z forward);
  identity (V, 3)      the subject's neutral mesh: FLAME's template plus the shape blend of the per-component
                       median of DECA's per-frame shape codes (one subject, one shape; DECA's per-frame shape
                       jitter is not kept), no expression, no pose;
  scale, translation   DECA's orthographic camera (s, tx, ty) composed with the crop's inverse: frame pixels =
                       scale * FLIP @ rotation @ model + translation, where model is the mesh with the jaw (and
                       neck, eyes) posed and no global rotation; FLAME rotates about its root joint, which the
                       translation absorbs;
  vertices (T, V, 3)   the posed FLAME mesh in frame pixels (x right, y down, z away from the camera, pixels);
  landmarks (T, V, 3)  the same mesh: DECA regresses, it observes no points of its own (fit_error is 0);
  mouth_occluded       False, hands absent: this backend does not look for hands.

DECA's jaw y and z rotations (sideways jaw motion, small in speech) shape the mesh but are not part of the codes
(an edit keeps the source's: flame_repose.py). The projection maps crop NDC -1 / +1 onto crop pixels 0 / 223, the
square's edges of DECA's crop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ned_outlier.errors import UserError
from ned_outlier.io.video import VideoReader
from ned_outlier.reconstruction.deca import deca_crop_transform, deca_input, load_deca_encoder, load_emoca
from ned_outlier.reconstruction.deca.crop import DECA_RESOLUTION
from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.params import FaceParams, ParamSchema, VideoMeta

log = logging.getLogger(__name__)

BACKENDS = ("flame-deca", "flame-emoca")
N_SHAPE = 100
N_EXPRESSION = 50
JAW_OPENING = "jaw_open"


@dataclass(frozen=True)
class FlameDecaConfig:
    """The user's files (each None: its environment variable, see `ned_outlier.reconstruction.deca` and `.flame`):
    deca_model (deca_model.tar, DECA_MODEL_PATH), emoca_model (an EMOCA .ckpt or its folder, EMOCA_MODEL_PATH; for
    flame-emoca), flame_model (FLAME 2020 generic_model.pkl, FLAME_MODEL_PATH). batch_size: crops encoded at once;
    device: torch device of the encoder and FLAME, e.g. "cpu" or "cuda"."""

    deca_model: str | None = None
    emoca_model: str | None = None
    flame_model: str | None = None
    batch_size: int = 16
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"flame.batch_size must be >= 1, got {self.batch_size}")


def flame_schema(backend: str, n_vertices: int) -> ParamSchema:
    """The codes of a FLAME backend: exp_00 .. exp_49 edited, the jaw opening kept; n_vertices of its FLAME model."""
    return ParamSchema(backend=backend, expression_names=tuple(f"exp_{i:02d}" for i in range(N_EXPRESSION)),
                       mouth_names=(JAW_OPENING,), n_vertices=n_vertices)


class FlameDecaReconstructor:
    """Frames of one tracked face -> FaceParams, with DECA's (or EMOCA's) encoder and FLAME on `config.device`.
    Every asset is loaded (and checked) when this is made, before any frame is read: a missing or wrong file is a
    one-line UserError naming it and how to give it."""

    def __init__(self, backend: str, config: FlameDecaConfig):
        from ned_outlier.reconstruction.flame.layer import FlameLayer
        from ned_outlier.reconstruction.flame.model_file import load_flame_model

        if backend not in BACKENDS:
            raise UserError(f"unknown FLAME backend {backend!r}: use one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.config = config
        self.device = torch.device(config.device)
        if backend == "flame-emoca":
            self.encoder = load_emoca(config.emoca_model)
        else:
            self.encoder = load_deca_encoder(config.deca_model)
        self.encoder.to(self.device)
        model = load_flame_model(config.flame_model)
        self.flame = FlameLayer(model, n_shape=N_SHAPE, n_expression=N_EXPRESSION).to(self.device)
        self.schema = flame_schema(backend, model.v_template.shape[0])

    @torch.no_grad()
    def encode(self, reader: VideoReader, boxes: np.ndarray, present: np.ndarray, progress: bool) -> dict:
        """Every present frame's crop (from its box (T, 4)) through the encoder: crop matrices (T, 2, 3) (NaN where
        absent) and the codes shape (T, 100), exp (T, 50), pose (T, 6), cam (T, 3), NaN where absent."""
        frames = len(present)
        codes = {name: np.full((frames, size), np.nan, dtype=np.float32)
                 for name, size in (("shape", N_SHAPE), ("exp", N_EXPRESSION), ("pose", 6), ("cam", 3))}
        crops = np.full((frames, 2, 3), np.nan)
        batch: list[int] = []
        images: list[np.ndarray] = []

        def flush() -> None:
            result = self.encoder(torch.as_tensor(np.stack(images), device=self.device))
            for name in codes:
                codes[name][batch] = getattr(result, name).float().cpu().numpy()
            batch.clear()
            images.clear()

        for index, frame in enumerate(tqdm(reader, total=frames, desc=f"{self.backend} encode",
                                           disable=not progress)):
            if not present[index]:
                continue
            crops[index] = deca_crop_transform(box=boxes[index])
            images.append(deca_input(frame, crops[index]))
            batch.append(index)
            if len(batch) == self.config.batch_size:
                flush()
        if batch:
            flush()
        return {"crop_matrix": crops, **codes}

    @torch.no_grad()
    def pose_meshes(self, shape: np.ndarray, expression: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, ...]:
        """FLAME without its global rotation, for N frames: shape (N, 100) or (100,), expression (N, 50), pose (N, 6)
        (the global part is ignored) -> (model (N, V, 3), root joint (N, 3)), model space."""
        count = len(expression)
        shape = np.array(np.broadcast_to(shape, (count, N_SHAPE)))  # a copy: torch wants writable arrays
        local_pose = np.concatenate([np.zeros((count, 3)), pose[:, 3:6]], axis=1)
        tensors = [torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=self.device)
                   for a in (shape, expression, local_pose)]
        vertices, joints = self.flame(*tensors)
        return vertices.double().cpu().numpy(), joints[:, 0].double().cpu().numpy()

    def __call__(self, reader: VideoReader, frame_count: int, track, progress: bool) -> FaceParams | None:
        """FaceParams of one track (`ned_outlier.face.FaceTrack`) of `reader`'s video (module docstring); None when
        the track has no present frame."""
        present = track.present
        if not present.any():
            return None
        encoded = self.encode(reader, track.boxes, present, progress)
        found = present.copy()
        shape = np.median(encoded["shape"][found], axis=0)
        identity, _ = self.pose_meshes(shape, np.zeros((1, N_EXPRESSION)), np.zeros((1, 6)))
        frames, vertex_count = len(present), self.schema.n_vertices
        rotation = np.full((frames, 3, 3), np.nan)
        scale = np.full(frames, np.nan)
        translation = np.full((frames, 3), np.nan)
        vertices = np.full((frames, vertex_count, 3), np.nan, dtype=np.float32)
        indices = np.flatnonzero(found)
        for start in range(0, len(indices), self.config.batch_size):
            chunk = indices[start:start + self.config.batch_size]
            model, root = self.pose_meshes(shape, encoded["exp"][chunk], encoded["pose"][chunk])
            placed = place_in_frame(model, root, encoded["pose"][chunk, :3], encoded["cam"][chunk],
                                    encoded["crop_matrix"][chunk])
            rotation[chunk], scale[chunk], translation[chunk], vertices[chunk] = placed
        expression = np.where(found[:, None], encoded["exp"], np.nan).astype(np.float32)
        mouth = encoded["pose"][:, 3:4].astype(np.float32)
        return FaceParams(
            schema=self.schema, video=VideoMeta.of(reader, frame_count), track_id=track.track_id,
            identity=identity[0].astype(np.float32), face_found=found, crop_matrix=encoded["crop_matrix"],
            rotation=rotation, scale=scale, translation=translation, expression=expression, mouth=mouth,
            vertices=vertices, landmarks=vertices.copy(),
            fit_error=np.where(found, 0.0, np.nan).astype(np.float32), mouth_occluded=np.zeros(frames, bool))


def place_in_frame(model: np.ndarray, root: np.ndarray, global_pose: np.ndarray, cam: np.ndarray,
                   crop_matrix: np.ndarray) -> tuple[np.ndarray, ...]:
    """FLAME meshes posed without their global rotation -> frame pixels, as DECA projects them into its crop.

    model (N, V, 3) and root joint (N, 3) in model space; global_pose (N, 3) axis-angle about the root; cam (N, 3)
    orthographic s, tx, ty (crop NDC = s * (x + tx, y + ty), y flipped into pixels); crop_matrix (N, 2, 3) frame ->
    crop similarity of DECA's crop. Returns rotation (N, 3, 3), scale (N,), translation (N, 3) with frame pixels =
    scale * FLIP @ rotation @ model + translation, and those vertices (N, V, 3) float32.
    """
    from ned_outlier.reconstruction.flame.layer import axis_angle_to_matrix

    rotation = axis_angle_to_matrix(torch.as_tensor(global_pose, dtype=torch.float64)).numpy()
    half = (DECA_RESOLUTION - 1) / 2  # NDC -1 / +1 -> crop pixel 0 / 223
    factor = np.hypot(crop_matrix[:, 0, 0], crop_matrix[:, 1, 0])  # crop pixels per frame pixel
    scale = half * cam[:, 0] / factor
    # rotation about the root: R (v - j) + j = R v + (I - R) j, then the camera's shift in model units.
    shift = root - np.einsum("nij,nj->ni", rotation, root)
    shift[:, :2] += cam[:, 1:3]
    offset = np.zeros_like(shift)
    offset[:, :2] = (half - crop_matrix[:, :, 2]) / factor[:, None]
    translation = scale[:, None] * (shift @ FLIP.T) + offset
    vertices = scale[:, None, None] * np.einsum("ij,njk,nvk->nvi", FLIP, rotation, model) + translation[:, None]
    return rotation, scale, translation, vertices.astype(np.float32)

