"""NED's training data: MEAD-layout clips reconstructed once into per-frame codes, cut into 10-frame windows, each
with its emotion and its outlier weight lambda.

    paths = reconstruct_clips(clips, root, cache, ReconstructionConfig())      # cache/<clip path>.npz, resumable
    windows = build_windows(clips, paths, root, emotions, lambdas=read_lambda_table("out/lambda/windows.csv"))
    windows.codes  # (N, 10, C): the mouth code then the expression code of each frame
    windows.skipped  # {"windows without a lambda row ...": n, ...}: what was left out, and why
    windows = with_actor_neutral(windows)  # windows.neutral (N, C): each window's actor's mean neutral code

A window is used when its clip has the face in all of its frames; with a lambda table (scripts/score_outliers.py's
windows.csv, with the window length and hop of the scores.json beside it) only windows that have a lambda row are
used, since the scorer saw no face in the others. A table scored with another window length, or with a hop that
the training hop is not a multiple of, is refused.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ned_outlier.data.mead import MeadClip, window_starts
from ned_outlier.errors import UserError
from ned_outlier.reconstruction.params import FaceParams, ParamSchema
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct, track_reconstructor

LOG = logging.getLogger(__name__)
SCORES_SUMMARY = "scores.json"
"""The summary scripts/score_outliers.py writes beside windows.csv (it records the window length and hop)."""


def clip_codes(params: FaceParams) -> np.ndarray:
    """(T, M + E) float32 per-frame codes, the mouth code first (NED puts the jaw first); NaN where no face."""
    return np.concatenate([params.mouth, params.expression], axis=1).astype(np.float32)


def reconstruct_clips(clips: list[MeadClip], root: Path, cache: Path, config: ReconstructionConfig,
                      progress: bool = False) -> list[Path | None]:
    """Each clip's reconstruction as cache/<its path under root>.npz (made once; an existing file is reused), or
    None for a clip in which no face is found."""
    return reconstruct_videos([clip.path for clip in clips], root, cache, config, progress)


def reconstruct_videos(videos: list[Path], root: Path, cache: Path, config: ReconstructionConfig,
                       progress: bool = False, desc: str = "reconstruct clips") -> list[Path | None]:
    """reconstruct_clips for videos given by their paths (each under root). The backend's files are loaded once,
    before the first clip that is not cached; a missing one stops here (UserError), it does not skip every clip."""
    paths = []
    reconstruct_track = None
    for video in tqdm(videos, desc=desc, unit="clip", disable=not progress):
        target = cache / Path(video).relative_to(root).with_suffix(".npz")
        if not target.is_file():
            if reconstruct_track is None:
                reconstruct_track = track_reconstructor(config)
            try:
                params = reconstruct(video, config, progress=False, reconstruct_track=reconstruct_track)
            except UserError as error:
                LOG.warning("skipping %s: %s", video, error)
                paths.append(None)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            params.save(target)
        paths.append(target)
    return paths


@dataclass(frozen=True)
class LambdaTable:
    """scripts/score_outliers.py's weights: {(clip path relative to the data root, start frame): lambda}, and the
    window length and hop they were scored with."""

    weights: dict[tuple[str, int], float]
    window: int
    hop: int
    path: Path

    def require_windows(self, length: int, hop: int) -> None:
        """UserError unless the table has a row for every window of `length` frames every `hop` frames: it was
        scored with windows of that length, every `hop` frames or a divisor of it (a table scored every frame serves
        training every 2nd)."""
        if self.window != length or hop % self.hop:
            raise UserError(f"{self.path} was scored with {self.window}-frame windows every {self.hop} frame(s), "
                            f"but training uses {length}-frame windows every {hop}: score again with that window "
                            "and hop (score_outliers.py's config) or change data.window / data.hop")


def read_lambda_table(path: str | Path) -> LambdaTable:
    """windows.csv of scripts/score_outliers.py, with the window and hop of the scores.json written beside it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"lambda table not found: {path} (make it with scripts/score_outliers.py)")
    summary_path = path.with_name(SCORES_SUMMARY)
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        window, hop = int(summary["window"]), int(summary["hop"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{path}: no readable scores.json beside it (scripts/score_outliers.py writes both), so the "
                        "window and hop it was scored with are unknown") from None
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"path", "start", "lambda"} <= set(rows[0]):
        raise UserError(f"{path}: expected the columns path, start, lambda of scripts/score_outliers.py")
    return LambdaTable({(row["path"], int(row["start"])): float(row["lambda"]) for row in rows}, window, hop, path)


@dataclass(frozen=True)
class WindowSet:
    """codes (N, T, C) float32; emotion (N,) int64 index into `emotions`; weight (N,) float32 lambda; clip (N,) index
    into `clip_paths` (relative to the data root) and start (N,) frame of each window; schema of the codes;
    skipped: reason -> number of clips or windows of the selected emotions left out; neutral: (N, C) the mean
    neutral code of each window's actor (with_actor_neutral), or None."""

    codes: np.ndarray
    emotion: np.ndarray
    weight: np.ndarray
    clip: np.ndarray
    start: np.ndarray
    clip_paths: tuple[str, ...]
    emotions: tuple[str, ...]
    schema: ParamSchema
    skipped: dict[str, int] = field(default_factory=dict)
    neutral: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def mouth_dims(self) -> int:
        return len(self.schema.mouth_names)


def build_windows(clips: list[MeadClip], params_paths: list[Path | None], root: Path, emotions: tuple[str, ...],
                  length: int = 10, hop: int = 1, lambdas: LambdaTable | None = None) -> WindowSet:
    """Every usable window of the clips whose emotion is one of `emotions`, the others counted in `skipped` (and
    logged); UserError when the clips' schemas differ, the lambda table's windows are not these, or no window is
    left."""
    if lambdas is not None:
        lambdas.require_windows(length, hop)
    codes, emotion, weight, clip_index, starts, names = [], [], [], [], [], []
    skipped: Counter[str] = Counter()
    schema = None
    for clip, path in zip(clips, params_paths):
        if clip.emotion not in emotions:
            continue
        if path is None:
            skipped["clips without a face"] += 1
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
                skipped["windows without the face in every frame"] += 1
                continue
            lam = 1.0 if lambdas is None else lambdas.weights.get((relative, start), float("nan"))
            if not np.isfinite(lam):
                skipped["windows without a lambda row (the scorer saw no face in one of their frames)"] += 1
                continue
            codes.append(per_frame[start:start + length])
            emotion.append(emotions.index(clip.emotion))
            weight.append(lam)
            clip_index.append(len(names) - 1)
            starts.append(start)
    if not codes:
        raise UserError(f"no {length}-frame window with the face in every frame (and a lambda, if a table is given) "
                        f"in {len(clips)} clips{describe_skipped(skipped)}")
    if skipped:
        LOG.warning("%d windows used%s", len(codes), describe_skipped(skipped))
    return WindowSet(np.stack(codes), np.array(emotion, np.int64), np.array(weight, np.float32),
                     np.array(clip_index, np.int64), np.array(starts, np.int64), tuple(names), emotions, schema,
                     dict(skipped))


def describe_skipped(skipped: dict[str, int]) -> str:
    """The counts as text, e.g. `; left out: 1 clips without a face, 3 windows without ...`, or '' when none."""
    return "; left out: " + ", ".join(f"{n} {why}" for why, n in skipped.items()) if skipped else ""


def actor_of(clip_path: str) -> str:
    """The actor of a clip path relative to the data root (MEAD's layout: <actor>/video/...)."""
    return Path(clip_path).parts[0]


def actor_neutral_codes(windows: WindowSet) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(N,) the actor of each window, and actor -> (C,) the mean code over that actor's neutral windows; UserError
    for an actor without any."""
    actor = np.array([actor_of(windows.clip_paths[c]) for c in windows.clip])
    neutral = np.array(windows.emotions)[windows.emotion] == "neutral"
    means = {}
    for name in sorted(set(actor)):
        mine = actor == name
        if not (mine & neutral).any():
            raise UserError(f"actor {name} has no neutral window: codes relative to each actor's neutral need "
                            "each actor's neutral clips")
        means[name] = windows.codes[mine & neutral].mean(axis=(0, 1))
    return actor, means


def with_actor_neutral(windows: WindowSet) -> WindowSet:
    """The windows with `neutral` (N, C) set to their actor's mean neutral code (actor_neutral_codes)."""
    actor, means = actor_neutral_codes(windows)
    return replace(windows, neutral=np.stack([means[name] for name in actor]))
