"""A labelled synthetic emotion set: real faces edited to each emotion with the editing path, split by identity.

    config = load_set_config("configs/recognition/synthetic_set.yaml")
    summary = build_emotion_set(config, Path("out/emotion_set"))
    train = read_folders(Path("out/emotion_set") / "train")

For each source (a video, a photo, a stack of photos such as skimage's LFW subset) every face is an identity: a
video's tracked face, each face of a group photo (cut out with context first, so that the editor sees one face), each
image of a stack. Its frames (a video's: `frames` spread over the clip, drawn with the seed; a photo's: the photo) are
reconstructed and edited to every emotion at every intensity exactly as `scripts/edit.py` edits a video
(`ned_outlier.pipeline`: FACS prototypes, mesh-guided warp, mouth retrieval within a video), then cropped to a square
around the face. The label is the edit's target emotion, never the source's own expression: `neutral` is an edit to
neutral. Faces the reconstructor cannot fit are skipped and counted.

Layout: OUT/{train,test}/<label>/<identity>_<frame>_<intensity>.png (what `read_folders` reads) and OUT/manifest.csv
(path, label, identity, split, source, frame, intensity), written last: a set without it is incomplete.

A photo is a one-frame video to the reconstructor, so its face is its own neutral (the identity estimate takes the
low percentile of a single frame): an edit adds the prototype to whatever the photo shows. A video's codes are
relative to the subject's most neutral frames instead.
"""

from __future__ import annotations

import csv
import fnmatch
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ned_outlier.config import from_dict, load_config, replace_fields, repo_path
from ned_outlier.data.face_sources import (MESH_POINTS, Face, SourceConfig, fit_face, is_photo, media_path,
                                           photo_faces, square_matrix)
from ned_outlier.errors import UserError
from ned_outlier.face.crop import warp_to_crop
from ned_outlier.face.detector import FaceDetector
from ned_outlier.io.atomic import atomic_output
from ned_outlier.io.image import write_image
from ned_outlier.io.video import VideoReader
from ned_outlier.manipulator.facs import MOUTH_MODES
from ned_outlier.pipeline import EditConfig, FrameEditor, load_edit_config, target_codes
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.labels import EMOTIONS, normalise_emotion
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig

SPLITS = ("train", "test")


@dataclass(frozen=True)
class SetConfig:
    """Every setting of the synthetic set (configs/recognition/synthetic_set.yaml).

    emotions: the classes (canonical names or synonyms), each an edit target of `edit_config`'s manipulator.
    intensities: edit intensities in (0, 1], each a separate image.
    mouth: `edit` (the jaw and lips move to the target too) or `keep` (the source's mouth, as for speech).
    size, margin: output crop side in pixels, and context around the face mesh's box (fraction of its side, total).
    region_size, region_margin: the cut-out around each face of a photo that the reconstructor sees.
    min_photo_side: photos smaller than this (short side) are upscaled before face detection.
    test_identities: identities of the test split, or fnmatch patterns over them (`lfw_09*`); every other identity
        is in train.
    sources: name -> SourceConfig fields; the name is the identity (`<name>_<k>` for the k-th face from the left
        of a photo with several, `<name>_<index>` for the images of a stack).
    edit_config, reconstruct_config: the editing and reconstruction YAMLs (relative paths: from the repository).
    """

    seed: int = 0
    emotions: tuple[str, ...] = EMOTIONS[:7]
    intensities: tuple[float, ...] = (0.8, 1.0)
    mouth: str = "edit"
    size: int = 256
    margin: float = 0.5
    region_size: int = 512
    region_margin: float = 1.0
    min_photo_side: int = 256
    test_identities: tuple[str, ...] = ()
    sources: dict = field(default_factory=dict)
    edit_config: str = "configs/edit/default.yaml"
    reconstruct_config: str = "configs/reconstruct/default.yaml"

    def __post_init__(self) -> None:
        for emotion in self.emotions:
            normalise_emotion(emotion)
        if not self.emotions or len(set(self.labels)) != len(self.emotions):
            raise ValueError(f"emotions must be distinct and at least one, got {list(self.emotions)}")
        if not self.intensities or not all(0.0 < value <= 1.0 for value in self.intensities):
            raise ValueError(f"intensities must be in (0, 1], got {list(self.intensities)}")
        if self.mouth not in MOUTH_MODES:
            raise ValueError(f"mouth must be one of {', '.join(MOUTH_MODES)}, got {self.mouth!r}")
        if min(self.size, self.region_size, self.min_photo_side) < 16:
            raise ValueError("size, region_size and min_photo_side must be at least 16 pixels")
        if not self.sources:
            raise ValueError("no sources")
        self.source_configs()  # every source checked up front

    @property
    def labels(self) -> tuple[str, ...]:
        """The classes' canonical names, in the config's order."""
        return tuple(normalise_emotion(emotion) for emotion in self.emotions)

    def source_configs(self) -> dict[str, SourceConfig]:
        """name -> SourceConfig; a UserError names a bad entry."""
        return {name: from_dict(SourceConfig, spec, f"sources.{name}") for name, spec in self.sources.items()}


@dataclass(frozen=True)
class ManifestRow:
    """One image of the set; `path` relative to the set's folder."""

    path: str
    label: str
    identity: str
    split: str
    source: str
    frame: int
    intensity: float


@dataclass(frozen=True)
class SetSummary:
    """What a build wrote (`rows`) and skipped (`skipped`: (identity, reason))."""

    rows: list[ManifestRow]
    skipped: list[tuple[str, str]]

    def counts(self) -> dict[str, dict[str, int]]:
        """split -> label -> number of images."""
        table: dict[str, dict[str, int]] = {}
        for row in self.rows:
            table.setdefault(row.split, {}).setdefault(row.label, 0)
            table[row.split][row.label] += 1
        return table

    def identities(self) -> dict[str, list[str]]:
        """split -> its identities, sorted."""
        return {split: sorted({r.identity for r in self.rows if r.split == split}) for split in SPLITS}


def load_set_config(path: str | Path, overrides: dict | None = None) -> SetConfig:
    """The set's YAML, with dotted-key `overrides` (e.g. {"seed": 3}) checked like the file."""
    config = load_config(path, SetConfig)
    return replace_fields(config, overrides) if overrides else config


def editor_names(config: SetConfig, edit: EditConfig) -> dict[str, str]:
    """Canonical label -> the editor's emotion name for every class of the set; UserError for one it cannot edit."""
    known = {normalise_emotion(name): name for name in edit.facs.emotions}
    missing = [label for label in config.labels if label not in known]
    if missing:
        raise UserError(f"the editor ({config.edit_config}) has no prototype for {', '.join(missing)}")
    return {label: known[label] for label in config.labels}


def square_within(box: np.ndarray, margin: float, area: tuple[float, float, float, float]) -> np.ndarray:
    """The square x0, y0, x1, y1 around `box` with `margin` of context, shrunk to fit into `area` and moved inside
    it (so that a crop never shows border fill)."""
    low, high, area = np.asarray(box[:2]), np.asarray(box[2:]), np.asarray(area)
    side = min((high - low).max() * (1 + margin), *(area[2:] - area[:2]))
    centre = np.clip((low + high) / 2, area[:2] + side / 2, area[2:] - side / 2)
    return np.concatenate([centre - side / 2, centre + side / 2])


def find_faces(config: SetConfig, reconstruction: ReconstructionConfig, workdir: Path,
               skipped: list) -> list[Face]:
    """Every identity of every source (photos detected and cut out now; videos are one face each)."""
    detector = FaceDetector(reconstruction.detector)
    faces = []
    for name, source in config.source_configs().items():
        if is_photo(source):
            faces += photo_faces(name, source, config, detector, workdir, skipped)
        else:
            faces.append(Face(name, name, media_path(source.media), video=True, frames=source.frames))
    identities = [face.identity for face in faces] + [identity for identity, _ in skipped]
    duplicates = sorted({i for i in identities if identities.count(i) > 1})
    if duplicates:
        raise UserError(f"identity {duplicates[0]!r} comes from two sources; rename one")
    unknown = [pattern for pattern in config.test_identities if not fnmatch.filter(identities, pattern)]
    if unknown:
        raise UserError(f"test identity {unknown[0]!r} is none of the sources' faces ({', '.join(identities)})")
    return faces


def is_test_identity(identity: str, test_identities: tuple[str, ...]) -> bool:
    """Whether `identity` is one of `test_identities` (names or fnmatch patterns)."""
    return any(fnmatch.fnmatchcase(identity, pattern) for pattern in test_identities)


def spread_frames(candidates: np.ndarray, count: int, rng: np.random.Generator) -> list[int]:
    """`count` of the sorted frame indices `candidates`: one drawn from each of `count` equal consecutive runs."""
    runs = np.array_split(candidates, min(count, len(candidates)))
    return sorted(int(rng.choice(run)) for run in runs)


def choose_frames(face: Face, params: FaceParams, seed: int) -> list[int]:
    """The frames to edit: a photo's one; a video's `frames` spread over its face frames without a hand over the
    mouth, drawn with a generator seeded by `seed` and the identity (so sources do not share draws)."""
    if not face.video:
        return [0]
    candidates = np.flatnonzero(params.face_found & ~params.mouth_occluded)
    rng = np.random.default_rng([seed, zlib.crc32(face.identity.encode())])
    return spread_frames(candidates, face.frames, rng) if len(candidates) else []


def face_crop(frame: np.ndarray, landmarks: np.ndarray, area: tuple[float, float, float, float] | None, size: int,
              margin: float) -> np.ndarray:
    """The (size, size) crop of the square around the face mesh `landmarks` (V, >=2) of `frame` with `margin` of
    context, kept inside `area` (None: the frame)."""
    points = landmarks[:MESH_POINTS, :2]
    box = np.concatenate([points.min(axis=0), points.max(axis=0)])
    area = area or (-0.5, -0.5, frame.shape[1] - 0.5, frame.shape[0] - 0.5)
    return warp_to_crop(frame, square_matrix(square_within(box, margin, area), size, 0.0), size)


def edited_crops(face: Face, params: FaceParams, frames: list[int], config: SetConfig, edit: EditConfig,
                 names: dict[str, str]) -> Iterator[tuple[str, int, float, np.ndarray]]:
    """(label, frame, intensity, face crop) for every class, intensity and frame, edited as scripts/edit.py does;
    every crop of one frame is the same square of the source frame."""
    reader = VideoReader(face.media)
    wanted = set(frames)
    originals = {index: frame for index, frame in enumerate(reader) if index in wanted}
    for label in config.labels:
        for intensity in config.intensities:
            target = target_codes(edit, params, names[label], None, intensity, config.mouth)
            editor = FrameEditor(params, target, edit)
            editor.prepare(reader, wanted)
            for index in frames:
                crop = face_crop(editor.render(index, originals[index]), params.landmarks[index], face.area,
                                 config.size, config.margin)
                yield label, index, intensity, crop


def image_name(identity: str, frame: int, intensity: float) -> str:
    return f"{identity}_{frame:04d}_{intensity:.2f}.png"


def prepare_output(out: Path, overwrite: bool) -> None:
    """Make `out`; a previous set in it (train/, test/, manifest.csv) is a UserError unless `overwrite`, which
    removes it."""
    previous = [out / name for name in (*SPLITS, "manifest.csv", "contact_sheet.png") if (out / name).exists()]
    if previous and not overwrite:
        raise UserError(f"{out} already holds a set ({previous[0].name}); pass --overwrite to replace it")
    for path in previous:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def write_manifest(out: Path, rows: list[ManifestRow]) -> Path:
    """OUT/manifest.csv, one row per image (columns: ManifestRow's fields), atomically."""
    path = out / "manifest.csv"
    with atomic_output(path) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([f.name for f in fields(ManifestRow)])
            writer.writerows([[getattr(row, f.name) for f in fields(ManifestRow)] for row in rows])
    return path


def read_manifest(out: Path) -> list[ManifestRow]:
    """The rows of OUT/manifest.csv."""
    path = out / "manifest.csv"
    if not path.is_file():
        raise UserError(f"no manifest.csv in {out}: not a finished synthetic set")
    with open(path, newline="", encoding="utf-8") as handle:
        return [ManifestRow(r["path"], r["label"], r["identity"], r["split"], r["source"], int(r["frame"]),
                            float(r["intensity"])) for r in csv.DictReader(handle)]


def build_emotion_set(config: SetConfig, out: Path, overwrite: bool = False, progress: bool = True) -> SetSummary:
    """Write the set into `out` (see the module's docstring); deterministic given the config (and its seed)."""
    edit = load_edit_config(repo_path(config.edit_config))
    reconstruction = load_config(repo_path(config.reconstruct_config), ReconstructionConfig)
    names = editor_names(config, edit)
    prepare_output(out, overwrite)
    rows: list[ManifestRow] = []
    skipped: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="emotion-set-") as workdir:
        faces = find_faces(config, reconstruction, Path(workdir), skipped)
        for face in tqdm(faces, desc="faces", unit="face", disable=not progress):
            try:
                params = fit_face(face, reconstruction)
            except UserError as error:
                skipped.append((face.identity, str(error).removeprefix(f"{face.media}: ")))
                continue
            frames = choose_frames(face, params, config.seed)
            if not frames:
                skipped.append((face.identity, "no frame with the face clear of hands"))
            split = "test" if is_test_identity(face.identity, config.test_identities) else "train"
            for label, frame, intensity, crop in edited_crops(face, params, frames, config, edit, names):
                relative = Path(split) / label / image_name(face.identity, frame, intensity)
                write_image(out / relative, crop)
                rows.append(ManifestRow(relative.as_posix(), label, face.identity, split, face.source, frame,
                                        intensity))
    rows.sort(key=lambda row: row.path)
    write_manifest(out, rows)
    return SetSummary(rows, skipped)


def contact_sheet(out: Path, rows: list[ManifestRow], identity: str, labels: tuple[str, ...], tile: int = 128
                  ) -> np.ndarray:
    """RGB sheet of one identity: a row per (frame, intensity), a column per label, each tile captioned."""
    mine = [row for row in rows if row.identity == identity]
    if not mine:
        raise UserError(f"no images of identity {identity!r} in {out}")
    images = {(r.frame, r.intensity, r.label): out / r.path for r in mine}
    lines = []
    for frame, intensity in sorted({(r.frame, r.intensity) for r in mine}):
        tiles = []
        for label in labels:
            tile_image = np.zeros((tile, tile, 3), np.uint8)
            if (frame, intensity, label) in images:
                image = cv2.cvtColor(cv2.imread(str(images[frame, intensity, label])), cv2.COLOR_BGR2RGB)
                tile_image = cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)
            cv2.putText(tile_image, f"{label} {intensity:g} #{frame}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                        (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile_image)
        lines.append(np.hstack(tiles))
    return np.vstack(lines)
