"""Evaluate an emotion classifier on images and videos, and an edited video against its source.

    classifier = create_model("fer2013-minixception")
    faces = FaceFinder()
    edit = evaluate("edit.mp4", classifier, faces, embedder=FaceEmbedder())      # Evaluation: one Record a frame
    summary = summarise(edit.records, classifier.labels, target="sad")           # counts, rates, WAR/UAR
    summary["source"] = compare_to_source(edit, evaluate("source.mp4", classifier, faces, embedder=...))

Where the classifier looks: ned_outlier.face.finder's face (found as the reconstruction finds it, cut as the square
around its mesh). Images that are face crops already (datasets) can skip all of it (`faces=None`: the whole image is
the face).

Videos stream in two passes (face tracking, then mesh + classifier in batches of BATCH_SIZE crops); only the
per-frame results (a few kilobytes a frame, most of it the mesh's face points) are kept.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ned_outlier.errors import UserError
from ned_outlier.face.finder import FaceFinder, cut, lip_opening, mesh_box
from ned_outlier.io.atomic import atomic_outputs
from ned_outlier.io.image import is_image
from ned_outlier.io.video import VideoReader
from ned_outlier.labels import EMOTIONS, normalise_emotion
from recognition.data.readers import Sample, read_folders
from recognition.identity import identity_distance
from recognition.metrics import confusion_matrix, per_class_recall, save_confusion, uar, war

BATCH_SIZE = 32
IDENTITY_EVERY = 4
OUTPUT_FILES = ("frames.csv", "summary.json", "confusion.png")


@dataclass(slots=True)
class Record:
    """One frame of a video or one image.

    input: the file; frame: frame index (0 for an image); truth: canonical true label or None.
    Where a face was found: box (4,) x0, y0, x1, y1 of the classifier's crop in pixels, probabilities (C,) in the
    classifier's label order, lip_opening (inner-lip opening over the inter-ocular distance, NaN without a mesh),
    face_points (468, 2) the mesh's face points x, y in pixels (None without a mesh; the face region of
    recognition.edit_measures) and, on the frames sampled for identity, embedding (128,).
    """

    input: str
    frame: int
    truth: str | None = None
    box: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    lip_opening: float = float("nan")
    embedding: np.ndarray | None = None
    face_points: np.ndarray | None = None

    @property
    def has_face(self) -> bool:
        return self.probabilities is not None


@dataclass(frozen=True)
class Evaluation:
    """The records of one input (a video, an image or a folder of images), in order; frame_count: the frames
    decoded from a video (all of them unless max_frames cut it short), or the number of images."""

    input: Path
    records: list[Record]
    frame_count: int


class _Batches:
    """Runs the classifier on face crops BATCH_SIZE at a time and stores each crop's probabilities in its record."""

    def __init__(self, classifier) -> None:
        self.classifier = classifier
        self.pending: list[tuple[Record, np.ndarray]] = []

    def add(self, record: Record, crop: np.ndarray) -> None:
        self.pending.append((record, crop))
        if len(self.pending) == BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            probabilities = self.classifier.predict_proba([crop for _, crop in self.pending])
            for (record, _), row in zip(self.pending, probabilities):
                record.probabilities = row
        self.pending = []


def _measure(record: Record, image: np.ndarray, landmarks: np.ndarray | None, batches: _Batches,
             embedder=None) -> None:
    """Fill `record` from the face of `image` given by its mesh (None: the whole image is the face)."""
    height, width = image.shape[:2]
    record.box = mesh_box(landmarks) if landmarks is not None else np.array([0, 0, width, height], np.float32)
    if landmarks is not None:
        record.lip_opening = lip_opening(landmarks)
        record.face_points = np.array(landmarks[:468, :2], np.float32)
    if embedder is not None:
        record.embedding = embedder.embed(image, tuple(record.box))
    batches.add(record, cut(image, record.box))


def evaluate_video(path: str | Path, classifier, faces: FaceFinder, truth: str | None = None, step: int = 1,
                   max_frames: int | None = None, embedder=None, identity_every: int = IDENTITY_EVERY,
                   progress: bool = False) -> Evaluation:
    """Every `step`-th frame of the video (at most `max_frames` of them): the largest tracked face classified, and with
    an `embedder` (recognition.identity.FaceEmbedder) every `identity_every`-th of those frames embedded."""
    reader = VideoReader(path)
    stop = None if max_frames is None else max_frames * step
    total = -(-min(reader.info.frame_count, stop or reader.info.frame_count) // step)
    decoded = 0

    def frames() -> Iterator[np.ndarray]:
        """Frames 0, step, 2 step, ... before `stop`, decoding (and counting in `decoded`) every frame up to there."""
        nonlocal decoded
        for decoded, frame in enumerate(islice(reader, stop), start=1):
            if (decoded - 1) % step == 0:
                yield frame

    matrices = faces.crop_matrices(frames(), str(path), total, progress)
    records, batches = [], _Batches(classifier)
    meshes = faces.video_landmarks(frames(), matrices)
    for row, (frame, landmarks) in enumerate(tqdm(meshes, total=len(matrices), desc="classify", unit="frame",
                                                  disable=not progress)):
        records.append(Record(str(path), row * step, truth))
        if landmarks is not None:
            _measure(records[-1], frame, landmarks, batches, embedder if row % identity_every == 0 else None)
    batches.flush()
    return Evaluation(Path(path), records, decoded)


def evaluate_images(path: str | Path, samples: Sequence[Sample], classifier, faces: FaceFinder | None,
                    progress: bool = False) -> Evaluation:
    """Each image of `samples` classified: its largest face, or with faces=None the whole image (a face crop)."""
    images = (sample.image() for sample in tqdm(samples, desc="classify", unit="image", disable=not progress))
    meshed = faces.image_landmarks(images) if faces is not None else ((image, None) for image in images)
    records, batches = [], _Batches(classifier)
    for sample, (image, landmarks) in zip(samples, meshed):
        records.append(Record(str(sample.path), 0, sample.label or None))
        if faces is None or landmarks is not None:
            _measure(records[-1], image, landmarks, batches)
    batches.flush()
    return Evaluation(Path(path), records, len(records))


def image_samples(path: Path, labels: dict[Path, str]) -> list[Sample]:
    """The images of `path`: one image, a folder of images, or a class-per-folder layout (read_folders, which labels
    them). `labels` (resolved path -> canonical label, e.g. from read_labels) labels them too and wins; label "" is
    unknown."""
    if path.is_dir():
        direct = sorted(p for p in path.iterdir() if is_image(p))
        samples = [Sample("", path=p) for p in direct] if direct else read_folders(path)
    else:
        samples = [Sample("", path=path)]
    return [replace(sample, label=labels.get(sample.path.resolve(), sample.label)) for sample in samples]


def read_labels(path: str | Path) -> dict[Path, str]:
    """A CSV of rows `path,label` (an optional header row `path,label`; label: an emotion or a synonym) ->
    {resolved path: canonical label}; relative paths are relative to the CSV's folder."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"labels file not found: {path}")
    labels = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or (number == 1 and [cell.strip().lower() for cell in row] == ["path", "label"]):
                continue
            if len(row) != 2:
                raise UserError(f"{path} line {number}: expected `path,label`, got {','.join(row)!r}")
            try:
                labels[(path.parent / row[0].strip()).resolve()] = normalise_emotion(row[1])
            except UserError as error:
                raise UserError(f"{path} line {number}: {error}") from None
    return labels


def evaluate(path: str | Path, classifier, faces: FaceFinder | None, labels: dict[Path, str] | None = None,
             progress: bool = False, **video_options) -> Evaluation:
    """One input: a video (evaluate_video with `video_options`), an image or a folder of images (image_samples).
    `labels`: resolved path -> canonical true label (a video's label holds for all its frames). UserError when the
    input is missing, or when none of its frames or images has a face."""
    path, labels = Path(path), labels or {}
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    images = path.is_dir() or is_image(path)
    if images:
        evaluation = evaluate_images(path, image_samples(path, labels), classifier, faces, progress)
    elif faces is None:
        raise UserError(f"{path}: a video needs face detection; whole-image classification is for face crops")
    else:
        evaluation = evaluate_video(path, classifier, faces, labels.get(path.resolve()), progress=progress,
                                    **video_options)
    if not any(record.has_face for record in evaluation.records):
        what = "images" if images else "frames"
        raise UserError(f"{path}: no face found in any of its {len(evaluation.records)} {what}")
    return evaluation


def target_class(name: str, labels: Sequence[str]) -> str:
    """The canonical name of emotion `name`; UserError when it is not one of the classifier's `labels`."""
    target = normalise_emotion(name)
    if target not in labels:
        raise UserError(f"the model has no class {target!r} (its classes: {', '.join(labels)})")
    return target


def summarise(records: Sequence[Record], labels: Sequence[str], target: str | None = None) -> dict:
    """Over `records` (at least one with a face): frames, with_face, per label the top-class counts and the mean and
    maximum probabilities over the faces; with a `target` (one of labels) target_rate, the fraction of faces whose top class
    it is; where faces have true labels, "metrics" (classification_metrics)."""
    faces = [record for record in records if record.has_face]
    probabilities = np.array([record.probabilities for record in faces], np.float64)
    top = probabilities.argmax(axis=1)
    summary = {
        "frames": len(records),
        "with_face": len(faces),
        "top_class_counts": dict(zip(labels, np.bincount(top, minlength=len(labels)).tolist())),
        "mean_probabilities": dict(zip(labels, probabilities.mean(axis=0).tolist())),
        "max_probabilities": dict(zip(labels, probabilities.max(axis=0).tolist())),
    }
    if target is not None:
        summary |= {"target": target, "target_rate": float(np.mean(top == list(labels).index(target)))}
    labelled = [(record.truth, labels[index]) for record, index in zip(faces, top) if record.truth]
    if labelled:
        summary["metrics"] = classification_metrics(*zip(*labelled), labels)
    return summary


def classification_metrics(truths: Sequence[str], predictions: Sequence[str], labels: Sequence[str]) -> dict:
    """WAR, UAR, per-class recall and the confusion matrix (rows true, columns predicted) over `classes`: the
    classifier's labels, then any true label it lacks (recall 0: it can never be predicted)."""
    classes = list(labels) + [emotion for emotion in EMOTIONS if emotion in truths and emotion not in labels]
    matrix = confusion_matrix([classes.index(t) for t in truths], [classes.index(p) for p in predictions],
                              len(classes))
    recall = per_class_recall(matrix)
    return {
        "labelled": len(truths),
        "war": war(matrix),
        "uar": uar(matrix),
        "per_class_recall": {name: None if np.isnan(value) else float(value) for name, value in zip(classes, recall)},
        "classes": classes,
        "confusion": matrix.tolist(),
    }


def compare_to_source(edit: Evaluation, source: Evaluation, pixels: bool = False) -> dict:
    """An edited video against the video it was made from, evaluated with the same step and max_frames: mean
    identity distance over the frames embedded in both, and mouth_r, the Pearson correlation of the inner-lip
    opening over the frames with a mesh in both (None when undefined). With `pixels`, the two videos are decoded
    once more for the sharpness ratio and the pops of recognition.edit_measures over the source's face meshes
    (sharpness_ratio, pops, pop_frames, max_jump and their _compensated twins; pops None when no two consecutive
    frames were evaluated, as with a frame step above 1). UserError when the frame counts differ."""
    if edit.frame_count != source.frame_count:
        raise UserError(f"{edit.input} has {edit.frame_count} frames but {source.input} has {source.frame_count}: "
                        "the source must be the video the edit was made from")
    pairs = list(zip(edit.records, source.records))
    distances = [identity_distance(e.embedding, s.embedding) for e, s in pairs
                 if e.embedding is not None and s.embedding is not None]
    lips = np.array([(e.lip_opening, s.lip_opening) for e, s in pairs]).reshape(-1, 2)
    lips = lips[np.isfinite(lips).all(axis=1)]
    return {
        "source": str(source.input),
        "identity_distance": float(np.mean(distances)) if distances else None,
        "identity_frames": len(distances),
        "mouth_r": pearson(lips[:, 0], lips[:, 1]),
        "mouth_frames": len(lips),
    } | (_pixel_measures(edit, source) if pixels else {})


PIXEL_KEYS = ("sharpness_ratio", "pop_threshold", "pops", "pop_frames", "max_jump", "pops_compensated",
              "pop_frames_compensated", "max_jump_compensated")


def _pixel_measures(edit: Evaluation, source: Evaluation) -> dict:
    """recognition.edit_measures' sharpness and pops of `edit` against `source` (PIXEL_KEYS)."""
    from recognition.edit_measures import measure_videos

    regions = [None] * source.frame_count
    for record in source.records:
        regions[record.frame] = record.face_points
    measures = measure_videos(source.input, edit.input, regions, frames=source.frame_count, keep_frames=False)
    return {key: measures[key] for key in PIXEL_KEYS}


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation of two (N,) series; None with fewer than 2 points or a constant series."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def write_frames_csv(records: Sequence[Record], labels: Sequence[str], path: str | Path) -> Path:
    """One row per record: input, frame, box x0, y0, x1, y1, one probability column per label, predicted,
    true_label; the face columns are empty where no face was found. Written straight to `path` (write_outputs
    writes it as one of a set of temporary files)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["input", "frame", "x0", "y0", "x1", "y1", *labels, "predicted", "true_label"])
        for record in records:
            face = [""] * (len(labels) + 5)
            if record.has_face:
                face = [*(f"{v:.1f}" for v in record.box), *(f"{p:.6f}" for p in record.probabilities),
                        labels[int(np.argmax(record.probabilities))]]
            writer.writerow([record.input, record.frame, *face, record.truth or ""])
    return Path(path)


def write_outputs(folder: str | Path, records: Sequence[Record], labels: Sequence[str], summary: dict) -> list[Path]:
    """frames.csv (write_frames_csv), summary.json and, when the summary has metrics, confusion.png, as one set
    (atomic_outputs): all are written to temporary files first and renamed only when every one is complete, so a
    failure (a full disk) leaves none of them, not a table without its summary. A confusion.png of an earlier run
    that this one has no metrics for is removed with the set's renames. Returns the files written."""
    written = [Path(folder) / name for name in OUTPUT_FILES[:3 if "metrics" in summary else 2]]
    with atomic_outputs(written) as temps:
        write_frames_csv(records, labels, temps[0])
        temps[1].write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        if "metrics" in summary:
            metrics = summary["metrics"]
            save_confusion(np.array(metrics["confusion"]), metrics["classes"], temps[2])
    if "metrics" not in summary:
        (Path(folder) / OUTPUT_FILES[2]).unlink(missing_ok=True)
    return written


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_summary(summary: dict) -> str:
    """A short table of a summary (summarise's, with "model" and maybe "source" from compare_to_source added)."""
    faces = summary["with_face"]
    lines = [f"{summary['model']}: {summary['frames']} frames/images, {faces} with a face",
             f"{'class':<10} {'top-1':>6} {'mean p':>7}"]
    for label, count in summary["top_class_counts"].items():
        lines.append(f"{label:<10} {count / faces:6.3f} {summary['mean_probabilities'][label]:7.3f}")
    if "target" in summary:
        lines.append(f"target rate ({summary['target']}): {summary['target_rate']:.3f}")
    if "metrics" in summary:
        metrics = summary["metrics"]
        lines.append(f"WAR {metrics['war']:.3f}  UAR {metrics['uar']:.3f}  ({metrics['labelled']} labelled faces)")
    if "source" in summary:
        source = summary["source"]
        lines.append(f"vs {source['source']}: identity distance {_number(source['identity_distance'])} "
                     f"({source['identity_frames']} frames), mouth r {_number(source['mouth_r'])} "
                     f"({source['mouth_frames']} frames)")
        if "sharpness_ratio" in source:
            lines.append(f"sharpness ratio {_number(source['sharpness_ratio'])}, pops (jumps > "
                         f"{source['pop_threshold']:g} grey levels) {_number(source['pops'], 0)} "
                         f"(max jump {_number(source['max_jump'], 1)}), face motion compensated "
                         f"{_number(source['pops_compensated'], 0)} (max {_number(source['max_jump_compensated'], 1)})")
    return "\n".join(lines)
