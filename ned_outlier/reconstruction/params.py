"""FaceParams: the per-frame face parameters of one tracked face in one video, and their file format.

Every array has the video's frame count T as its first axis; frames where the face was not found have
`face_found == False` and NaN in every float array. One `.npz` file holds a whole video (`save` / `load`), so a
reconstruction is computed once and edited many times; it records its source video (`VideoMeta`), and
`FaceParams.require_source` refuses to pair it with any other.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ned_outlier.errors import UserError
from ned_outlier.io.atomic import atomic_output

if TYPE_CHECKING:
    from ned_outlier.io.video import VideoReader

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
# 1: before `hands` (read back with every hand absent); 2: before VideoMeta's listed_frames and fingerprint (read back
# without them: checked against a video by size and frame rate only)
READABLE_VERSIONS = (1, 2, 3)
MAX_HANDS = 2
HAND_LANDMARKS = 21


@dataclass(frozen=True)
class ParamSchema:
    """What the codes mean. The manipulator and renderer see only this, never the backend itself.

    backend: the reconstruction that produced them, e.g. "mediapipe-au" or "flame-deca".
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
    """The source video: path as given, size in pixels, exact frame rate fps_num / fps_den, decoded frame count;
    listed_frames, the container's frame count (`VideoInfo.frame_count`, known without decoding), and fingerprint,
    `VideoReader.fingerprint()` of its first frames. The last two are None in files written before they were
    recorded (format 1 and 2) and for parameters that describe no real video."""

    path: str
    width: int
    height: int
    fps_num: int
    fps_den: int
    frame_count: int
    listed_frames: int | None = None
    fingerprint: str | None = None

    @classmethod
    def of(cls, reader: "VideoReader", frame_count: int) -> "VideoMeta":
        """The record of `reader`'s video, of which `frame_count` frames were decoded."""
        info = reader.info
        return cls(str(reader.path), info.width, info.height, info.fps.numerator, info.fps.denominator, frame_count,
                   info.frame_count, reader.fingerprint())

    def describe(self) -> str:
        """e.g. '640x360, 25 fps, 472 frames' (frames as the container lists them, when recorded)."""
        frames = self.frame_count if self.listed_frames is None else self.listed_frames
        return _describe(self.width, self.height, Fraction(self.fps_num, self.fps_den), frames)


def _describe(width: int, height: int, fps: Fraction, frames: int) -> str:
    return f"{width}x{height}, {float(fps):g} fps, {frames} frames"


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

    def require_source(self, reader: "VideoReader", what: str = "the face parameters") -> None:
        """UserError unless `reader`'s video is the one these parameters were reconstructed from: the same size,
        frame rate, listed frame count and first frames (`VideoMeta`). Without a recorded fingerprint (files of
        format 1 and 2) only size and frame rate are compared. `what` names the parameters in the message."""
        meta, info = self.video, reader.info
        fps = Fraction(meta.fps_num, meta.fps_den)
        same = (meta.width, meta.height, fps) == (info.width, info.height, info.fps)
        if same and meta.listed_frames is not None:
            same = meta.listed_frames == info.frame_count
        if not same:
            raise UserError(f"{what} do not belong to {reader.path} "
                            f"({_describe(info.width, info.height, info.fps, info.frame_count)}): they were "
                            f"reconstructed from {meta.path} ({meta.describe()}); reconstruct {reader.path} instead")
        if meta.fingerprint is not None and meta.fingerprint != reader.fingerprint():
            raise UserError(f"{what} do not belong to {reader.path}: they were reconstructed from {meta.path}, "
                            f"whose first frames differ ({meta.describe()} both); reconstruct {reader.path} instead")

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
        """Read a file written by `save`; UserError when it is missing, not such a file, truncated, or its arrays
        disagree in frame count. Format 1 (before `hands`) loads with a warning, every hand absent; formats 1 and 2
        without the record of their source video's listed frame count and first frames (`require_source` then
        compares size and rate only; `load_params_of`, which pairs a file with a video, warns of it)."""
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
            schema, video = meta["schema"], VideoMeta(**meta["video"])
            schema = ParamSchema(
                backend=schema["backend"],
                expression_names=tuple(schema["expression_names"]),
                mouth_names=tuple(schema["mouth_names"]),
                n_vertices=int(schema["n_vertices"]),
            )
            track_id = int(meta["track_id"])
        except (OSError, EOFError, zipfile.BadZipFile, KeyError, TypeError, ValueError) as error:
            raise UserError(f"{path}: not a FaceParams file, or a truncated one ({error})") from None
        try:
            params = cls(schema=schema, video=video, track_id=track_id, **arrays)
        except ValueError as error:
            raise UserError(f"{path}: a damaged FaceParams file ({error}); reconstruct again") from None
        if version < 2:
            log.warning("%s was written before hands were stored: every hand reads as absent (reconstruct again to "
                        "keep hands out of the edit)", path)
        return params


def load_params_of(path: str | Path, video: str | Path, what: str | None = None) -> FaceParams:
    """`FaceParams.load(path)`, refused (UserError) unless it is a reconstruction of `video` (`require_source`;
    `what` names the file in the message, default "--params PATH"): what a script does with --params PATH VIDEO.
    A file that records no fingerprint of its video (format 1 and 2) is checked by size and rate, with a warning."""
    from ned_outlier.io.video import VideoReader

    params = FaceParams.load(path)
    if params.video.fingerprint is None:
        log.warning("%s was written before parameters recorded their video's frames: it is checked against %s by "
                    "size and frame rate only (reconstruct again to have it checked fully)", path, video)
    params.require_source(VideoReader(video), f"--params {path}" if what is None else what)
    return params


def no_hands(frames: int) -> np.ndarray:
    """`FaceParams.hands` of `frames` frames without any hand: (T, 2, 21, 2) float32, all NaN."""
    return np.full((frames, MAX_HANDS, HAND_LANDMARKS, 2), np.nan, dtype=np.float32)
