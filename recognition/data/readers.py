"""Readers for the expression datasets' own layouts. Each returns a list of `Sample`: an image source (a file path,
or pixels for FER2013's CSV), its canonical emotion label (`recognition.labels.EMOTIONS`) and its split.

    samples = read_dataset("rafdb", "/data/RAF-DB/basic")      # or: fer2013, ferplus, affectnet, caer-s, folders

The label orders are each dataset's own, mapped explicitly below; unusable rows (AffectNet's None/Uncertain/No-Face,
FERPlus images whose majority vote is unknown or not-a-face) are skipped. A missing file or folder is a UserError
that says which file the reader looked for.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ned_outlier.errors import UserError
from ned_outlier.io.image import is_image, read_image
from recognition.labels import AFFECTNET_ORDER, FER2013_LABELS, RAFDB_ORDER, normalise_emotion

FERPLUS_VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


@dataclass(frozen=True)
class Sample:
    """One labelled face image: `path` to read, or `pixels` (H, W) / (H, W, 3) uint8; canonical `label`; `split`."""

    label: str
    split: str = ""
    path: Path | None = None
    pixels: np.ndarray | None = None

    def image(self) -> np.ndarray:
        """RGB uint8 (H, W, 3)."""
        if self.pixels is not None:
            pixels = self.pixels
            return np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels
        return read_image(self.path)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise UserError(f"{what} not found: {path}")
    return path


def _rows(path: Path) -> list[dict]:
    with open(_require(path, "annotation file"), newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_fer2013(root: Path) -> list[Sample]:
    """fer2013.csv (columns emotion, pixels, Usage): 48x48 grey pixels as space-separated integers."""
    path = root / "fer2013.csv" if root.is_dir() else root
    samples = []
    for row in _rows(path):
        pixels = np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48)
        samples.append(Sample(FER2013_LABELS[int(row["emotion"])], row.get("Usage", ""), pixels=pixels))
    return samples


def read_ferplus(root: Path) -> list[Sample]:
    """FERPlus: fer2013new.csv (Usage, Image name, ten vote columns) beside the FER2013 images it names, which the
    FERPlus tools write as FER2013Train/, FER2013Valid/, FER2013Test/. Label = the majority vote over the eight
    emotions; images whose majority is 'unknown' or 'NF' (not a face) are skipped."""
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    samples = []
    for row in _rows(root / "fer2013new.csv"):
        if not row["Image name"]:
            continue
        votes = [float(row[name]) for name in FERPLUS_VOTES]
        if max(votes) < max(float(row.get("unknown", 0)), float(row.get("NF", 0))):
            continue
        label = normalise_emotion(FERPLUS_VOTES[int(np.argmax(votes))])
        samples.append(Sample(label, row["Usage"], path=root / folders[row["Usage"]] / row["Image name"]))
    return samples


def read_rafdb(root: Path) -> list[Sample]:
    """RAF-DB basic: EmoLabel/list_patition_label.txt ("train_00001.jpg 5", labels 1-7) and Image/aligned/
    (train_00001_aligned.jpg)."""
    listing = _require(root / "EmoLabel" / "list_patition_label.txt", "RAF-DB label list")
    samples = []
    for line in listing.read_text().split("\n"):
        if not line.strip():
            continue
        name, label = line.split()
        stem = Path(name).stem
        samples.append(Sample(RAFDB_ORDER[int(label) - 1], stem.split("_")[0],
                              path=root / "Image" / "aligned" / f"{stem}_aligned.jpg"))
    return samples


def read_affectnet(root: Path) -> list[Sample]:
    """AffectNet: Manually_Annotated_file_lists/{training,validation}.csv (subDirectory_filePath, expression, ...)
    and Manually_Annotated_Images/. Expression 8-10 (None, Uncertain, No-Face) are skipped."""
    samples = []
    lists = root / "Manually_Annotated_file_lists"
    for split in ("training", "validation"):
        for row in _rows(lists / f"{split}.csv"):
            expression = int(row["expression"])
            if expression < len(AFFECTNET_ORDER):
                samples.append(Sample(AFFECTNET_ORDER[expression], split,
                                      path=root / "Manually_Annotated_Images" / row["subDirectory_filePath"]))
    return samples


def read_folders(root: Path, split: str = "") -> list[Sample]:
    """Class-per-folder: root/<emotion or synonym>/<image>. Unknown folder names are a UserError."""
    samples = []
    for folder in sorted(p for p in _require(root, "dataset folder").iterdir() if p.is_dir()):
        label = normalise_emotion(folder.name)
        samples += [Sample(label, split, path=p) for p in sorted(folder.iterdir()) if is_image(p)]
    if not samples:
        raise UserError(f"no images under {root}/<emotion>/")
    return samples


def read_caer_s(root: Path) -> list[Sample]:
    """CAER-S: root/{train,test}/<Anger|Disgust|Fear|Happy|Neutral|Sad|Surprise>/<image>."""
    return [sample for split in ("train", "test") for sample in read_folders(root / split, split)]


READERS: dict[str, Callable[[Path], list[Sample]]] = {
    "fer2013": read_fer2013,
    "ferplus": read_ferplus,
    "rafdb": read_rafdb,
    "affectnet": read_affectnet,
    "caer-s": read_caer_s,
    "folders": read_folders,
}


def read_dataset(kind: str, root: str | Path) -> list[Sample]:
    """Samples of dataset `kind` (a key of READERS) stored at `root`."""
    if kind not in READERS:
        raise UserError(f"unknown dataset layout {kind!r} (known: {', '.join(READERS)})")
    return READERS[kind](Path(root))
