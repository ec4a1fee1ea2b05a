"""FaceParams: the per-frame face parameters of one tracked face in one video, and their file format.

Every array has the video's frame count T as its first axis; frames where the face was not found have
`face_found == False` and NaN in every float array. One `.npz` file holds a whole video (`save` / `load`), so a
reconstruction is computed once and edited many times.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ned_outlier.errors import UserError
from ned_outlier.io.atomic import atomic_output

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: before `hands` (read back with every hand absent)
MAX_HANDS = 2
HAND_LANDMARKS = 21


@dataclass(frozen=True)
class ParamSchema:
    """What the codes mean. The manipulator and renderer see only this, never the backend itself.

    backend: the reconstruction that produced them, e.g. "mediapipe-au" or "deca-flame".
    expression_names / mouth_names: the components of the expression code (changed by an edit) and of the mouth
        code (kept from the source so speech survives).
    n_vertices: vertices of the fitted mesh.
    """

    backend: str
    expression_names: tuple[str, ...]
    mouth_names: tuple[str, ...]
    n_vertices: int

    def require_same(self, other: "ParamSchema", what: str) -> None:
        """UserError when `other` (e.g. a checkpoint's schema) differs from this one."""
        if self != other:
            raise UserError(
                f"{what} was made for parameters of backend {other.backend!r} ({len(other.expression_names)} "
                f"expression + {len(other.mouth_names)} mouth dims), but these come from {self.backend!r} "
                f"({len(self.expression_names)} + {len(self.mouth_names)}); reconstruct with the matching backend"
            )


@dataclass(frozen=True)
class VideoMeta:
    """The source video: path as given, size in pixels, exact frame rate fps_num / fps_den, frame count."""

    path: str
    width: int
    height: int
    fps_num: int
    fps_den: int
    frame_count: int


@dataclass(frozen=True)
class FaceParams:
    """Arrays (T = frame count, V = vertices, E / M = expression / mouth dims):

    face_found (T,) bool; crop_matrix (T, 2, 3) float64 frame->crop affine (NaN where the track is absent);
    rotation (T, 3, 3) head rotation R_head in model space (identity = frontal); scale (T,), translation (T, 3):
    image = scale * FLIP @ R_head @ model + translation, in frame pixels (x right, y down, z away from the camera);
    expression (T, E) and mouth (T, M) codes; vertices (T, V, 3) fitted mesh and landmarks (T, V, 3) observed mesh,
    both in frame pixels; fit_error (T,) RMS fit distance divided by the inter-ocular distance; mouth_occluded (T,)
    bool, a hand over the mouth; hands (T, 2, 21, 2) float32, up to two hands' 21 MediaPipe Hands landmarks in
    frame pixels, NaN where there is no hand (a slot is either all finite or all NaN; a hand keeps its slot from
    frame to frame, so a frame with one hand may hold it in slot 1);
    identity (V, 3) the subject's neutral mesh in model space (constant over the video).

    `hands` may be left out (None): every hand is then absent. Files of format 1 (before `hands`) load so too.
    """

    schema: ParamSchema
    video: VideoMeta
    track_id: int
    identity: np.ndarray
    face_found: np.ndarray
    crop_matrix: np.ndarray
    rotation: np.ndarray
    scale: np.ndarray
    translation: np.ndarray
    expression: np.ndarray
    mouth: np.ndarray
    vertices: np.ndarray
    landmarks: np.ndarray
    fit_error: np.ndarray
    mouth_occluded: np.ndarray
    hands: np.ndarray | None = None

    ARRAYS = (
        "identity", "face_found", "crop_matrix", "rotation", "scale", "translation",
        "expression", "mouth", "vertices", "landmarks", "fit_error", "mouth_occluded", "hands",
    )  # fmt: skip

    def __post_init__(self) -> None:
        frames = len(self.face_found)
        if self.hands is None:
            object.__setattr__(self, "hands", no_hands(frames))
        elif self.hands.shape[1:] != (MAX_HANDS, HAND_LANDMARKS, 2):
            raise ValueError(f"FaceParams.hands has shape {self.hands.shape}, expected (T, {MAX_HANDS}, "
                             f"{HAND_LANDMARKS}, 2)")
        for name in self.ARRAYS[1:]:
            if len(getattr(self, name)) != frames:
                raise ValueError(f"FaceParams.{name} has {len(getattr(self, name))} frames, face_found has {frames}")

    @property
    def num_frames(self) -> int:
        return len(self.face_found)

    def save(self, path: str | Path) -> Path:
        """Write one .npz (atomically); returns the path."""
        path = Path(path)
        meta = {"format_version": FORMAT_VERSION, "schema": asdict(self.schema), "video": asdict(self.video)}
        meta["track_id"] = self.track_id
        with atomic_output(path) as temp:
            with open(temp, "wb") as handle:
                np.savez(handle, meta=np.array(json.dumps(meta)), **{n: getattr(self, n) for n in self.ARRAYS})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FaceParams":
        """Read a file written by `save` (format 1, before `hands`, too: a warning, hands all absent); UserError
        when it is missing or not such a file."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"parameters file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                version = meta.get("format_version")
                if version not in READABLE_VERSIONS:
                    raise UserError(f"{path}: FaceParams format {version}, expected one of {READABLE_VERSIONS}")
                arrays = {name: data[name] for name in cls.ARRAYS if version >= 2 or name != "hands"}
        except (OSError, KeyError, ValueError) as error:
            raise UserError(f"{path}: not a FaceParams file ({error})") from None
        if version < 2:
            log.warning("%s was written before hands were stored: every hand reads as absent (reconstruct again to "
                        "keep hands out of the edit)", path)
        schema = meta["schema"]
        schema = ParamSchema(
            backend=schema["backend"],
            expression_names=tuple(schema["expression_names"]),
            mouth_names=tuple(schema["mouth_names"]),
            n_vertices=int(schema["n_vertices"]),
        )
        return cls(schema=schema, video=VideoMeta(**meta["video"]), track_id=int(meta["track_id"]), **arrays)


def no_hands(frames: int) -> np.ndarray:
    """`FaceParams.hands` of `frames` frames without any hand: (T, 2, 21, 2) float32, all NaN."""
    return np.full((frames, MAX_HANDS, HAND_LANDMARKS, 2), np.nan, dtype=np.float32)
