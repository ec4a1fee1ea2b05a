"""RMFER's unlabeled face tracks: every face of multi-person videos, cropped frame by frame, and the batches of its
attention-based contrastive learning (ACL).

    config = load_face_track_config("configs/recognition/face_tracks.yaml")
    extract_face_tracks("reaction.mp4", Path("tracks"), config)      # tracks/reaction/<person>/<frame>.png + tracks.csv
    crops = read_face_tracks("tracks")                               # every video's crops with video/person/frame
    sampler = ACLBatchSampler(crops, 101, positive_window=5, negative_gap=30, seed=0)
    loader = DataLoader(FaceTrackDataset(crops, model.preprocess), batch_sampler=sampler)
    images, video, person, frame = next(iter(loader))
    loss = model.acl_loss(images, video, person, frame, sampler.layout, tau=0.1, gamma=0.1)

RMFER learns from reaction videos: several people watch the same thing, so faces of *other* people at about the same
moment are positives, and the *same* person far away in time (more than `negative_gap` frames) is a negative
(recognition.losses.acl_candidates defines them from each crop's video, person and frame). A person is a
face track of the detector and tracker the reconstruction uses (MTCNN + IoU tracking, ned_outlier.face.tracker);
tracks shorter than min_track_frames are dropped as spurious.

Batches follow the released code's sampling (datasets/contrastive/RMset.py): an anchor crop, `positives` crops of
the other people of its video within positive_window frames of it and `negatives` crops of its own person more than
negative_gap frames away, drawn with replacement when fewer exist (the released code: 50 and 50 per anchor). A batch
holds batch_size // (1 + positives + negatives) such groups, one after another, each its anchor first, then its
positives, then its negatives; `ACLBatchSampler.layout` (recognition.losses.ACLGroups) names those positions for the
loss, which contrasts only the anchors (the paper's and the released code's anchor semantics). Only anchors with at
least one candidate of each kind are drawn.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from ned_outlier.config import load_config
from ned_outlier.errors import UserError
from ned_outlier.face.crop import CropConfig, crop_matrices, warp_to_crop
from ned_outlier.face.detector import DetectorConfig, FaceDetector
from ned_outlier.face.tracker import TrackerConfig, track_faces
from ned_outlier.io.atomic import atomic_output
from ned_outlier.io.image import write_image
from ned_outlier.io.video import VideoReader
from recognition.data.readers import Sample
from recognition.losses import ACLGroups

INDEX = "tracks.csv"  # a video's folder is complete when it has this file (written last)
COLUMNS = ("path", "person", "frame")


@dataclass(frozen=True)
class FaceTrackConfig:
    """Every setting of the extraction (configs/recognition/face_tracks.yaml).

    crop: the crop around each tracked box (RMFER's input is 260 x 260).
    frame_step: keep every k-th frame's crops (all frames are tracked).
    min_track_frames: tracks present on fewer frames are dropped.
    """

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    crop: CropConfig = field(default_factory=lambda: CropConfig(size=260))
    frame_step: int = 1
    min_track_frames: int = 10

    def __post_init__(self) -> None:
        if self.frame_step < 1 or self.min_track_frames < 1:
            raise ValueError(f"frame_step and min_track_frames must be at least 1, got {self.frame_step}, "
                             f"{self.min_track_frames}")


def load_face_track_config(path: str | Path) -> FaceTrackConfig:
    return load_config(path, FaceTrackConfig)


def extract_face_tracks(video: str | Path, out: Path, config: FaceTrackConfig | None = None,
                        progress: bool = False) -> Path:
    """Crop every face track of `video` into out/<video stem>/<person>/<frame>.png with out/<stem>/tracks.csv
    (path, person, frame); the folder appears complete or not at all. A finished folder is left as it is (resume).
    Returns the folder; UserError when the video has no track of min_track_frames frames."""
    config = config or FaceTrackConfig()
    video = Path(video)
    folder = out / video.stem
    if (folder / INDEX).is_file():
        return folder
    reader = VideoReader(video)
    total = reader.info.frame_count
    with tqdm(total=total, desc=f"track {video.name}", unit="frame", disable=not progress) as bar:
        tracking = track_faces(reader, FaceDetector(config.detector), config.tracker,
                               progress=lambda done: bar.update(done - bar.n))
    tracks = [track for track in tracking.tracks if track.present.sum() >= config.min_track_frames]
    if not tracks:
        raise UserError(f"{video}: no face tracked over {config.min_track_frames} frames or more")
    matrices = [crop_matrices(track.boxes, config.crop) for track in tracks]
    partial = out / f".{video.stem}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    rows = []
    for index, frame in enumerate(tqdm(VideoReader(video), total=total, desc=f"crop {video.name}", unit="frame",
                                       disable=not progress)):
        if index % config.frame_step:
            continue
        for person, (track, matrix) in enumerate(zip(tracks, matrices)):
            if index < len(track.present) and track.present[index]:
                relative = f"{person}/{index:06d}.png"
                write_image(partial / relative, warp_to_crop(frame, matrix[index], config.crop.size))
                rows.append((relative, person, index))
    _write_index(partial / INDEX, rows)
    shutil.rmtree(folder, ignore_errors=True)  # an unfinished folder of an older layout, never a finished one
    os.replace(partial, folder)
    return folder


def _write_index(path: Path, rows: list[tuple[str, int, int]]) -> None:
    with atomic_output(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


@dataclass(frozen=True)
class TrackCrops:
    """The crops of every video of a face-track folder: paths (N,), and (N,) int64 video (index into `videos`),
    person (track id within its video) and frame (index in its video)."""

    videos: tuple[str, ...]
    paths: tuple[Path, ...]
    video: np.ndarray
    person: np.ndarray
    frame: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def read_face_tracks(root: str | Path) -> TrackCrops:
    """Every finished video folder of `root` (extract_face_tracks' output), in name order; UserError when none."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"face-track folder not found: {root} (make it with scripts/extract_face_tracks.py)")
    folders = sorted(p.parent for p in root.glob(f"*/{INDEX}"))
    if not folders:
        raise UserError(f"{root} holds no face tracks (no */{INDEX}; make them with scripts/extract_face_tracks.py)")
    paths, video, person, frame = [], [], [], []
    for number, folder in enumerate(folders):
        with open(folder / INDEX, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                paths.append(folder / row["path"])
                video.append(number)
                person.append(int(row["person"]))
                frame.append(int(row["frame"]))
    as_array = lambda values: np.asarray(values, np.int64)  # noqa: E731
    return TrackCrops(tuple(f.name for f in folders), tuple(paths), as_array(video), as_array(person),
                      as_array(frame))


class FaceTrackDataset(Dataset):
    """crops -> (image (3, S, S) from `preprocess`, video, person, frame) ints as in TrackCrops."""

    def __init__(self, crops: TrackCrops, preprocess: Callable[[np.ndarray], torch.Tensor]):
        self.crops, self.preprocess = crops, preprocess

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, int]:
        crops = self.crops
        image = self.preprocess(Sample("", path=crops.paths[i]).image())
        return image, int(crops.video[i]), int(crops.person[i]), int(crops.frame[i])


class ACLBatchSampler(Sampler[list[int]]):
    """Batches of crop indices made of (anchor, positives, negatives) groups (see the module's docstring).

    Every batch holds self.batch_size = groups * (1 + positives + negatives) crops in the order self.layout names.
    len(self) = max(1, len(crops) // self.batch_size) batches a pass; the pass's draws come from (seed, epoch, pass
    number within the epoch), so one epoch's batches are the same in every run.
    """

    def __init__(self, crops: TrackCrops, batch_size: int, positive_window: int, negative_gap: int, seed: int,
                 positives: int = 50, negatives: int = 50):
        group = 1 + positives + negatives
        if positives < 1 or negatives < 1 or batch_size < group:
            raise UserError(f"an ACL batch of {batch_size} crops cannot hold an anchor with {positives} positives and "
                            f"{negatives} negatives (needs at least {group})")
        self.positives, self.negatives, self.groups = positives, negatives, batch_size // group
        # batch_size is the length of every batch: accelerate's batch-sampler sharding (DDP) takes a batch shorter
        # than batch_size for the last one and pads it with crops of the first batches, breaking the group layout
        self.crops, self.batch_size, self.seed = crops, self.groups * group, seed
        self.epoch, self.passes = 0, 0
        self.pairs = _PairIndex(crops, positive_window, negative_gap)
        self.anchors = np.flatnonzero([self.pairs.has_both(i) for i in range(len(crops))])
        if not len(self.anchors):
            raise UserError("no face-track crop has both a positive (another person of its video within "
                            f"{positive_window} frames) and a negative (its own person more than {negative_gap} "
                            "frames away): ACL needs videos with several people, longer than that gap")

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.passes = epoch, 0

    @property
    def layout(self) -> ACLGroups:
        """Where each group's anchor, positives and negatives lie in every batch this sampler yields."""
        return ACLGroups.consecutive(self.groups, self.positives, self.negatives)

    def __len__(self) -> int:
        return max(1, len(self.crops) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, self.passes])
        self.passes += 1
        for _ in range(len(self)):
            batch = []
            for anchor in rng.choice(self.anchors, size=self.groups):
                positive, negative = self.pairs.positives(anchor), self.pairs.negatives(anchor)
                batch += [int(anchor), *_draw(rng, positive, self.positives), *_draw(rng, negative, self.negatives)]
            yield batch


def _draw(rng: np.random.Generator, pool: np.ndarray, count: int) -> list[int]:
    """`count` of `pool`: without replacement when it is large enough, else with."""
    return rng.choice(pool, size=count, replace=len(pool) < count).tolist()


class _PairIndex:
    """Each crop's positive candidates (same video, other person, |frame gap| <= positive_window) and negative
    candidates (same video, same person, |frame gap| > negative_gap), acl_candidates' definitions, looked up in
    each track's frame-sorted crops (memory linear in the number of crops)."""

    def __init__(self, crops: TrackCrops, positive_window: int, negative_gap: int):
        self.crops, self.window, self.gap = crops, positive_window, negative_gap
        self.tracks: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}  # video -> person -> (crops, frames)
        for video, person in sorted(set(zip(crops.video.tolist(), crops.person.tolist()))):
            members = np.flatnonzero((crops.video == video) & (crops.person == person))
            members = members[np.argsort(crops.frame[members], kind="stable")]
            self.tracks.setdefault(video, {})[person] = (members, crops.frame[members])

    def positives(self, i: int) -> np.ndarray:
        video, person, frame = int(self.crops.video[i]), int(self.crops.person[i]), self.crops.frame[i]
        parts = [members[np.searchsorted(frames, frame - self.window):
                         np.searchsorted(frames, frame + self.window, side="right")]
                 for other, (members, frames) in self.tracks[video].items() if other != person]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def negatives(self, i: int) -> np.ndarray:
        members, frames = self.tracks[int(self.crops.video[i])][int(self.crops.person[i])]
        frame = self.crops.frame[i]
        return np.concatenate([members[: np.searchsorted(frames, frame - self.gap)],
                               members[np.searchsorted(frames, frame + self.gap, side="right"):]])

    def has_both(self, i: int) -> bool:
        return len(self.negatives(i)) > 0 and len(self.positives(i)) > 0
