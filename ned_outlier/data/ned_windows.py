"""NED's training data: MEAD-layout clips reconstructed once into per-frame codes, cut into 10-frame windows, each
with its emotion and its outlier weight lambda.

    paths = reconstruct_clips(clips, root, cache, ReconstructionConfig())      # cache/<clip path>.npz, resumable
    windows = build_windows(clips, paths, root, emotions, lambdas=read_lambda_table("out/lambda/windows.csv"))
    windows.codes  # (N, 10, C): the mouth code then the expression code of each frame

A window is used when its clip has the face in all of its frames; with a lambda table (scripts/score_outliers.py's
windows.csv) only windows that have a lambda row are used, since the scorer saw no face in the others.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ned_outlier.data.mead import MeadClip, window_starts
from ned_outlier.errors import UserError
from ned_outlier.reconstruction.params import FaceParams, ParamSchema
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct

LOG = logging.getLogger(__name__)


def clip_codes(params: FaceParams) -> np.ndarray:
    """(T, M + E) float32 per-frame codes, the mouth code first (NED puts the jaw first); NaN where no face."""
    return np.concatenate([params.mouth, params.expression], axis=1).astype(np.float32)


def reconstruct_clips(clips: list[MeadClip], root: Path, cache: Path, config: ReconstructionConfig,
                      progress: bool = False) -> list[Path | None]:
    """Each clip's reconstruction as cache/<its path under root>.npz (made once; an existing file is reused), or
    None for a clip in which no face is found."""
    paths = []
    for clip in tqdm(clips, desc="reconstruct clips", unit="clip", disable=not progress):
        target = cache / clip.path.relative_to(root).with_suffix(".npz")
        if not target.is_file():
            try:
                params = reconstruct(clip.path, config, progress=False)
            except UserError as error:
                LOG.warning("skipping %s: %s", clip.path, error)
                paths.append(None)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            params.save(target)
        paths.append(target)
    return paths


def read_lambda_table(path: str | Path) -> dict[tuple[str, int], float]:
    """windows.csv of scripts/score_outliers.py -> {(clip path relative to the data root, start frame): lambda}."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"lambda table not found: {path} (make it with scripts/score_outliers.py)")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"path", "start", "lambda"} <= set(rows[0]):
        raise UserError(f"{path}: expected the columns path, start, lambda of scripts/score_outliers.py")
    return {(row["path"], int(row["start"])): float(row["lambda"]) for row in rows}


@dataclass(frozen=True)
class WindowSet:
    """codes (N, T, C) float32; emotion (N,) int64 index into `emotions`; weight (N,) float32 lambda; clip (N,) index
    into `clip_paths` (relative to the data root) and start (N,) frame of each window; schema of the codes."""

    codes: np.ndarray
    emotion: np.ndarray
    weight: np.ndarray
    clip: np.ndarray
    start: np.ndarray
    clip_paths: tuple[str, ...]
    emotions: tuple[str, ...]
    schema: ParamSchema

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def mouth_dims(self) -> int:
        return len(self.schema.mouth_names)


def build_windows(clips: list[MeadClip], params_paths: list[Path | None], root: Path, emotions: tuple[str, ...],
                  length: int = 10, hop: int = 1, lambdas: dict[tuple[str, int], float] | None = None) -> WindowSet:
    """Every usable window of the clips whose emotion is one of `emotions`; UserError when the clips' schemas differ
    or no window is left."""
    codes, emotion, weight, clip_index, starts, names = [], [], [], [], [], []
    schema = None
    for clip, path in zip(clips, params_paths):
        if path is None or clip.emotion not in emotions:
            continue
        params = FaceParams.load(path)
        if schema is None:
            schema = params.schema
        schema.require_same(params.schema, f"the reconstruction of {clip.path}")
        relative = clip.path.relative_to(root).as_posix()
        names.append(relative)
        per_frame = clip_codes(params)
        for start in window_starts(len(per_frame), length, hop):
            if not params.face_found[start:start + length].all():
                continue
            lam = 1.0 if lambdas is None else lambdas.get((relative, start))
            if lam is None or not np.isfinite(lam):
                continue
            codes.append(per_frame[start:start + length])
            emotion.append(emotions.index(clip.emotion))
            weight.append(lam)
            clip_index.append(len(names) - 1)
            starts.append(start)
    if not codes:
        raise UserError(f"no {length}-frame window with the face in every frame (and a lambda, if a table is given) "
                        f"in {len(clips)} clips")
    return WindowSet(np.stack(codes), np.array(emotion, np.int64), np.array(weight, np.float32),
                     np.array(clip_index, np.int64), np.array(starts, np.int64), tuple(names), emotions, schema)
