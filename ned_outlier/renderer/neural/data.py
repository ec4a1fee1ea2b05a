"""An actor's own video as the neural renderer's training data: per frame, the real face crop (the target) and the
reconstruction's mesh (MediaPipe's or FLAME's) in that crop's pixels (what the conditioning images are drawn from).

    frames = actor_frames("actor.mp4", params, size=256, cache=Path("runs/renderer/frames.npy"))
    dataset = SequenceDataset(frames, length=3, frames=range(0, 377))     # first 80% for training

The crops are cut in one streaming pass and kept in a memory-mapped .npy file (T, S, S, 3) uint8, so memory does
not grow with the video's length and a resumed run does not decode the video again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ned_outlier.errors import UserError
from ned_outlier.face.crop import apply_affine, warp_to_crop
from ned_outlier.io.atomic import atomic_output
from ned_outlier.io.video import VideoReader
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.reconstructor import true_runs


def rescale_crop(matrix: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """(..., 2, 3) frame -> crop affines for a `from_size` crop -> the same square region as a `to_size` crop (pixel
    centres: the grid edges -0.5 and size - 0.5 map to each other)."""
    k = to_size / from_size
    scaled = np.array(matrix, dtype=np.float64) * k
    scaled[..., :, 2] += 0.5 * k - 0.5
    return scaled


def crop_vertices(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """points (V, 3) in frame pixels (x right, y down, z away, in pixel units) -> (V, 3) in the crop of the frame ->
    crop affine `matrix` (2, 3): x, y through the affine, z scaled by its scale."""
    scale = np.hypot(matrix[0, 0], matrix[0, 1])
    return np.concatenate([apply_affine(matrix, points[:, :2]), points[:, 2:3] * scale], axis=1)


@dataclass(frozen=True)
class ActorFrames:
    """crops (T, S, S, 3) uint8 RGB (memory-mapped); vertices (T, V, 3) float32 crop pixels (NaN without a face);
    matrices (T, 2, 3) frame -> crop affines at size S; found (T,) bool."""

    crops: np.ndarray
    vertices: np.ndarray
    matrices: np.ndarray
    found: np.ndarray

    @property
    def size(self) -> int:
        return self.crops.shape[1]


def actor_frames(video: str | Path, params: FaceParams, size: int, cache: Path, source_crop_size: int = 256,
                 progress: bool = True) -> ActorFrames:
    """The crops of `params`' face in `video` at `size` px (cut once into `cache`, then re-read) and its meshes in
    crop pixels. `source_crop_size`: the crop size the reconstruction's crop matrices were made for. UserError when
    `params` are of another video (`FaceParams.require_source`)."""
    reader = VideoReader(video)
    params.require_source(reader)
    matrices = rescale_crop(params.crop_matrix, source_crop_size, size)
    found = params.face_found.copy()
    vertices = np.full(params.landmarks.shape, np.nan, dtype=np.float32)
    for index in np.flatnonzero(found):
        vertices[index] = crop_vertices(params.landmarks[index].astype(np.float64), matrices[index])
    expected = (params.num_frames, size, size, 3)
    if not (cache.is_file() and np.load(cache, mmap_mode="r").shape == expected):
        _cut_crops(reader, matrices, found, size, cache, progress)
    return ActorFrames(np.load(cache, mmap_mode="r"), vertices, matrices, found)


def _cut_crops(reader: VideoReader, matrices: np.ndarray, found: np.ndarray, size: int, cache: Path,
               progress: bool) -> None:
    """Stream the video once and write every frame's crop (zeros without a face) to `cache` (.npy), atomically."""
    count = len(found)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(cache) as temp:
        crops = np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
        for index, frame in enumerate(tqdm(reader, total=count, desc="crop frames", unit="frame",
                                           disable=not progress)):
            if index >= count:
                break
            if found[index]:
                crops[index] = warp_to_crop(frame, matrices[index], size)
        crops.flush()
        del crops


def split_frames(count: int, train_fraction: float) -> tuple[range, range]:
    """(training frames, held-out frames): the first `train_fraction` of `count` frames, then the rest."""
    cut = int(round(count * train_fraction))
    return range(0, cut), range(cut, count)


def sequence_starts(found: np.ndarray, frames: range, length: int) -> np.ndarray:
    """First frames t of every run of `length` consecutive face frames lying within `frames`; (N,) int64."""
    inside = np.zeros_like(found)
    inside[frames.start:frames.stop] = True
    starts = [start for run in true_runs(found & inside) for start in run[: max(0, len(run) - length + 1)]]
    return np.asarray(starts, dtype=np.int64)


class SequenceDataset(Dataset):
    """Runs of `length` consecutive face frames of one actor within `frames`.

    Item: (images (L, 3, S, S) float32 in [-1, 1], vertices (L + 2, V, 3) float32 crop pixels: the two frames before
    the run first, repeated from the run's first frame where the video has none with a face)."""

    def __init__(self, frames: ActorFrames, length: int, span: range):
        self.frames, self.length = frames, length
        self.starts = sequence_starts(frames.found, span, length)
        if len(self.starts) == 0:
            raise UserError(f"no run of {length} consecutive frames with a face in frames {span.start}-{span.stop}")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = int(self.starts[item])
        stop = start + self.length
        crops = np.array(self.frames.crops[start:stop])  # a writable copy of the memory-mapped crops
        images = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        before = self._with_face(start - 1, start)
        history = [self._with_face(start - 2, before) if before != start else start, before]
        vertices = np.concatenate([self.frames.vertices[history], self.frames.vertices[start:stop]])
        return images, torch.from_numpy(vertices)

    def _with_face(self, index: int, fallback: int) -> int:
        return index if index >= 0 and self.frames.found[index] else fallback
