"""What the web page (scripts/app.py) keeps between a user's clicks: the reconstructions of the videos, photos and
reference clips it was given, so that a second edit of the same input (another emotion, another intensity) only
re-renders. Every edit goes through the CLI's own path (reconstruct_faces, edit_video); nothing here is a second
implementation of either.

    session = EditSession(Path("/tmp/ned-app"), load_edit_config(), ReconstructionConfig())
    faces = session.faces(video)                                     # FaceChoice per tracked face, with thumbnails
    result = session.edit(video, emotion="sad", intensity=0.7, face=faces[0].track_id)
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ned_outlier.errors import UserError
from ned_outlier.face.finder import cut, mesh_box
from ned_outlier.io.image import is_image
from ned_outlier.io.video import VideoReader
from ned_outlier.labels import normalise_emotion
from ned_outlier.pipeline import EditConfig, EditReport, edit_video
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct_faces

ALL_FACES = "all"
THUMBNAIL_SIDE = 128


@dataclass(frozen=True)
class FaceChoice:
    """One tracked face of an input: its track id, a thumbnail (THUMBNAIL_SIDE x THUMBNAIL_SIDE x 3 RGB uint8, the
    face in its first frame), its frames (first, last) and its size: the mesh box area summed over its frames."""

    track_id: int
    thumbnail: np.ndarray
    first_frame: int
    last_frame: int
    size: float

    @property
    def caption(self) -> str:
        """'face <track id>': the thumbnail's caption and the page's name of the face."""
        return f"face {self.track_id}"

    def describe(self) -> str:
        """The caption and the face's frames: 'face 1 (frames 10-80)' (a photo's: 'face 1')."""
        if self.first_frame == self.last_frame:
            return self.caption
        return f"{self.caption} (frames {self.first_frame}-{self.last_frame})"


@dataclass(frozen=True)
class SessionEdit:
    """An edit's report (EditReport: frames, faces, output and side-by-side preview paths) and whether the input's
    reconstruction (and the reference's) came from the session's cache."""

    report: EditReport
    reused: bool


def file_digest(path: Path) -> str:
    """sha256 (hex) of the file's bytes: two uploads of one file share a reconstruction, whatever their names."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def face_sizes(faces: list[FaceParams]) -> list[float]:
    """Each face's mesh box area summed over its frames (square pixels): the 'largest' face is the one the camera
    saw most of, as the tracker's own 'largest' (box area x frames)."""
    sizes = []
    for params in faces:
        boxes = mesh_box(params.landmarks[params.face_found])
        sizes.append(float(np.sum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))))
    return sizes


def thumbnails(video: Path, faces: list[FaceParams]) -> list[np.ndarray]:
    """Each face cut out of its first frame and resized to THUMBNAIL_SIDE square: (side, side, 3) RGB uint8. Reads
    the video only up to the last face's first frame."""
    import cv2

    first = {index: int(np.argmax(params.face_found)) for index, params in enumerate(faces)}
    found: dict[int, np.ndarray] = {}
    for frame_index, frame in enumerate(VideoReader(video)):
        for index, params in enumerate(faces):
            if first[index] == frame_index:
                face = cut(frame, mesh_box(params.landmarks[frame_index]))
                found[index] = cv2.resize(face, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), interpolation=cv2.INTER_AREA)
        if len(found) == len(faces):
            break
    return [found[index] for index in range(len(faces))]


class EditSession:
    """Reconstructions cached by file content (the last `capacity` inputs: a reference clip counts as one), edits
    written to `work_dir` (one folder per edit, the output named as the CLI names it). Thread-safe: the page's
    requests may overlap."""

    def __init__(self, work_dir: Path, config: EditConfig, reconstruction: ReconstructionConfig,
                 capacity: int = 4, progress: bool = True):
        self.work_dir = Path(work_dir)
        self.config = config
        self.reconstruction = reconstruction
        self.capacity = capacity
        self.progress = progress
        self._cache: OrderedDict[str, tuple[list[FaceParams], list[FaceChoice]]] = OrderedDict()
        self._lock = threading.Lock()
        self._edits = 0

    def _reconstructed(self, video: Path) -> tuple[list[FaceParams], list[FaceChoice], bool]:
        """(every face's FaceParams in track order, their FaceChoices, whether they came from the cache)."""
        key = file_digest(video)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return *self._cache[key], True
            faces = reconstruct_faces(video, self.reconstruction, face=ALL_FACES, progress=self.progress)
            sizes = face_sizes(faces)
            choices = [FaceChoice(params.track_id, thumbnail, int(np.argmax(params.face_found)),
                                  len(params.face_found) - 1 - int(np.argmax(params.face_found[::-1])), size)
                       for params, thumbnail, size in zip(faces, thumbnails(video, faces), sizes)]
            self._cache[key] = (faces, choices)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
            return faces, choices, False

    def faces(self, video: Path) -> list[FaceChoice]:
        """The tracked faces of `video`, largest first (reconstructed now, or from the cache); UserError when it is
        not a readable video or photo or shows no face."""
        VideoReader(video)  # a readable input: UserError naming what is wrong
        return sorted(self._reconstructed(Path(video))[1], key=lambda choice: -choice.size)

    def edit(self, video: Path, *, emotion: str | None = None, reference: Path | None = None,
             intensity: float = 1.0, mouth: str = "keep", face: int | str = "largest",
             preview: bool = True) -> SessionEdit:
        """Edit `video`'s face `face` (a track id, "largest" or "all") toward `emotion` or `reference`'s style, as
        `scripts/edit.py` would; the output and its side-by-side preview go to a new folder of `work_dir`.
        UserError (the CLI's one-line messages) for bad input."""
        video = Path(video)
        if (emotion is None) == (reference is None):
            raise UserError("choose an emotion or a reference clip (one of them)")
        if not 0.0 <= intensity <= 1.0:
            raise UserError(f"intensity must be between 0 and 1, got {intensity}")
        if mouth not in ("keep", "edit"):
            raise UserError(f"mouth must be 'keep' or 'edit', got {mouth!r}")
        emotion = normalise_emotion(emotion) if emotion is not None else None
        VideoReader(video)
        faces, choices, reused = self._reconstructed(video)
        chosen = self._choose(faces, choices, face)
        reference_params = None
        if reference is not None:
            reference_faces, reference_choices, reference_reused = self._reconstructed(Path(reference))
            reference_params = self._choose(reference_faces, reference_choices, "largest")[0]
            reused = reused and reference_reused
        label = emotion if emotion is not None else f"like_{Path(reference).stem}"
        suffix = video.suffix if is_image(video) else ".mp4"
        with self._lock:
            self._edits += 1
            folder = self.work_dir / f"edit-{self._edits:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"{video.stem}_{label}{suffix}"
        report = edit_video(video, out, self.config, emotion=emotion, reference=reference_params,
                            intensity=intensity, mouth=mouth, params=chosen, reconstruction=self.reconstruction,
                            preview=out.with_name(f"{out.stem}_preview{suffix}") if preview else None,
                            progress=self.progress)
        return SessionEdit(report, reused)

    @staticmethod
    def _choose(faces: list[FaceParams], choices: list[FaceChoice], face: int | str) -> list[FaceParams]:
        """The FaceParams to edit for `face`: every face ("all"), the largest ("largest") or a track id."""
        if face == ALL_FACES:
            return faces
        if face == "largest":
            return [faces[int(np.argmax([choice.size for choice in choices]))]]
        key = int(face) if isinstance(face, str) and face.isdigit() else face
        by_id = {params.track_id: params for params in faces}
        if isinstance(key, bool) or key not in by_id:
            valid = ", ".join(choice.describe() for choice in choices)
            raise UserError(f"no face {face!r} in this input: choose one of {valid}, 'largest' or 'all'")
        return [by_id[key]]
