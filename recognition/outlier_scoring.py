"""CLIP outlier suppression, step one: score every training clip and window for its own label.

    config = load_scoring_config("configs/ned/score_outliers.yaml")
    scores = score_clips(scan_mead(root, config.mead), create_model(...), FaceFinder(), config)
    write_scores(scores, root, out, config, scorer_name)   # clips.csv, windows.csv, scores.json, hist_<label>.png

A classifier (CLIP zero-shot, or any recognition model) gives each face frame class probabilities. A window's
probability p is the mean over its frames of the probability of the clip's label (its frames must all show the
face; other windows get no weight and are not trained on), a clip's the mean over its face frames. The weight is

    lambda = 1 if p >= threshold (0.6) else p

and NED's loss of each window is multiplied by it (ned_outlier.manipulator.ned.losses.outlier_weight). The NED trainer
reads windows.csv, with scores.json's window and hop, through ned_outlier.data.ned_windows.read_lambda_table: the
table, never a classifier, is what passes from here to it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ned_outlier.config import load_config
from ned_outlier.data.mead import MeadClip, MeadSelection, window_starts
from ned_outlier.data.ned_windows import SCORES_SUMMARY
from ned_outlier.errors import NoFaceError, UserError
from ned_outlier.io.atomic import atomic_output
from ned_outlier.manipulator.ned.losses import OUTLIER_THRESHOLD, outlier_weight
from recognition.evaluate import evaluate_video

CLIP_SCORER = "clip-zero-shot"  # the recognition model `--scorer clip` means


@dataclass(frozen=True)
class ScoringConfig:
    """scorer: a recognition model name (`clip` = clip-zero-shot); pretrained and options: its weights and keyword
    arguments (CLIP: architecture, clip_weights, templates, words); threshold: lambda's; window, hop: NED's windows;
    frame_step: score every k-th frame (a window's probability then averages the scored frames inside it)."""

    scorer: str = "fer2013-minixception"
    pretrained: str | None = None
    options: dict = field(default_factory=dict)
    threshold: float = OUTLIER_THRESHOLD
    window: int = 10
    hop: int = 1
    frame_step: int = 1
    mead: MeadSelection = field(default_factory=MeadSelection)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if min(self.window, self.hop, self.frame_step) < 1:
            raise ValueError("window, hop and frame_step must be at least 1")

    @property
    def model_name(self) -> str:
        return CLIP_SCORER if self.scorer == "clip" else self.scorer


def load_scoring_config(path: str | Path) -> ScoringConfig:
    return load_config(path, ScoringConfig)


@dataclass(frozen=True)
class ClipScore:
    """One clip's per-frame probabilities (T, C) in `labels` order, NaN rows where no face; with frame_step k only
    frames 0, k, 2k ... are scored."""

    clip: MeadClip
    labels: tuple[str, ...]
    probabilities: np.ndarray
    frame_step: int = 1

    @property
    def own(self) -> np.ndarray:
        """(T,) probability of the clip's own label per frame (NaN where none)."""
        return self.probabilities[:, self.labels.index(self.clip.emotion)]

    def clip_probability(self) -> float:
        """Mean own-label probability over the scored face frames (NaN without any)."""
        own = self.own[np.isfinite(self.own)]
        return float(own.mean()) if len(own) else float("nan")

    def windows(self, length: int, hop: int) -> list[tuple[int, float]]:
        """(start, probability) of each window whose every frame shows the face; probability = mean own-label
        probability of its scored frames."""
        found = self.found
        rows = []
        for start in window_starts(len(self.own), length, hop):
            if not found[start:start + length].all():
                continue
            own = self.own[start:start + length]
            rows.append((start, float(np.nanmean(own)) if np.isfinite(own).any() else float("nan")))
        return rows

    @property
    def found(self) -> np.ndarray:
        """(T,) bool: frames with the face; an unscored frame (frame_step > 1) takes the previous scored frame's."""
        scored = np.isfinite(self.probabilities).all(axis=1)
        frames = np.arange(len(scored))
        return scored[frames - frames % self.frame_step]


def score_clips(clips: list[MeadClip], classifier, faces, config: ScoringConfig, progress: bool = False
                ) -> list[ClipScore]:
    """Every clip's per-frame probabilities under `classifier` (recognition.evaluate's face crops); UserError when
    a clip's label is not one of the classifier's classes, or a clip cannot be read. Clips without any face are
    kept, with no windows (write_scores counts them)."""
    missing = sorted({clip.emotion for clip in clips} - set(classifier.labels))
    if missing:
        raise UserError(f"the scorer has no class {', '.join(missing)} (its classes: {', '.join(classifier.labels)}); "
                        "leave those clips out with the config's mead.emotions")
    scores = []
    for clip in tqdm(clips, desc="score clips", unit="clip", disable=not progress):
        try:
            evaluation = evaluate_video(clip.path, classifier, faces, step=config.frame_step)
        except NoFaceError:  # a readable clip without any face; any other error names its clip and stops the run
            evaluation = None
        frames = evaluation.frame_count if evaluation else _frame_count(clip.path)
        probabilities = np.full((frames, len(classifier.labels)), np.nan, np.float32)
        for record in evaluation.records if evaluation else []:
            if record.has_face:
                probabilities[record.frame] = record.probabilities
        scores.append(ClipScore(clip, tuple(classifier.labels), probabilities, config.frame_step))
    return scores


def _frame_count(path: Path) -> int:
    from ned_outlier.io.video import VideoReader

    return VideoReader(path).info.frame_count


def weights(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """lambda for (N,) probabilities (NaN stays NaN: no weight)."""
    return outlier_weight(torch.from_numpy(np.asarray(probabilities, np.float64)), threshold).numpy()


def write_scores(scores: list[ClipScore], root: Path, out: Path, config: ScoringConfig, scorer: str) -> dict:
    """clips.csv, windows.csv, scores.json and hist_<label>.png into `out` (atomically); returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    labels = scores[0].labels
    clip_rows, window_rows = [], []
    for score in scores:
        relative = score.clip.path.relative_to(root).as_posix()
        p = score.clip_probability()
        face_frames = int(score.found.sum())
        means = np.nanmean(score.probabilities, axis=0) if face_frames else np.full(len(labels), np.nan)
        clip_rows.append([relative, score.clip.actor, score.clip.emotion, score.clip.level, len(score.own),
                          face_frames, p, float(weights(np.array([p]), config.threshold)[0]), *means])
        windows = score.windows(config.window, config.hop)
        lambdas = weights(np.array([w[1] for w in windows]), config.threshold) if windows else []
        window_rows += [[relative, score.clip.emotion, start, p_window, lam]
                        for (start, p_window), lam in zip(windows, lambdas)]
    if not window_rows:
        raise UserError(f"no {config.window}-frame window shows the face in every frame in any of the "
                        f"{len(scores)} clips: nothing to score")
    _write_csv(out / "clips.csv", ["path", "actor", "emotion", "level", "frames", "face_frames", "probability",
                                   "lambda", *(f"p_{label}" for label in labels)], clip_rows)
    _write_csv(out / "windows.csv", ["path", "emotion", "start", "probability", "lambda"], window_rows)
    summary = _summary(clip_rows, window_rows, config, scorer, labels)
    with atomic_output(out / SCORES_SUMMARY) as temp:
        temp.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    for label in sorted({row[1] for row in window_rows}):
        plot_histogram([row[3] for row in window_rows if row[1] == label], label, config.threshold, scorer,
                       out / f"hist_{label}.png")
    return summary


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with atomic_output(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[f"{v:.6f}" if isinstance(v, float) else v for v in row] for row in rows])


def _summary(clip_rows: list, window_rows: list, config: ScoringConfig, scorer: str, labels: tuple[str, ...]) -> dict:
    """Scorer, threshold, counts and the fraction of windows and clips down-weighted (lambda < 1), overall and per
    class."""
    window_lambda = np.array([row[4] for row in window_rows], np.float64)
    clip_lambda = np.array([row[7] for row in clip_rows], np.float64)
    per_class = {}
    for label in sorted({row[1] for row in window_rows}):
        mine = np.array([row[4] for row in window_rows if row[1] == label])
        per_class[label] = {"windows": len(mine), "down_weighted": float(np.mean(mine < 1)),
                            "mean_lambda": float(np.mean(mine))}
    return {
        "scorer": scorer, "pretrained": config.pretrained, "options": config.options, "labels": list(labels),
        "threshold": config.threshold, "window": config.window, "hop": config.hop, "frame_step": config.frame_step,
        "mead": asdict(config.mead), "clips": len(clip_rows), "windows": len(window_rows),
        "clips_without_face": int(np.sum(~np.isfinite(clip_lambda))),
        "down_weighted_windows": float(np.mean(window_lambda < 1)) if len(window_lambda) else None,
        "down_weighted_clips": float(np.mean(clip_lambda[np.isfinite(clip_lambda)] < 1)) if len(clip_rows) else None,
        "per_class": per_class,
    }


def plot_histogram(probabilities: list[float], label: str, threshold: float, scorer: str, path: Path) -> Path:
    """Histogram of the windows' own-label probabilities with the threshold marked, atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(probabilities, np.float64)
    values = values[np.isfinite(values)]
    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=100)
    axis.hist(values, bins=np.linspace(0, 1, 21), color="#4c72b0")
    axis.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:g}")
    below = float(np.mean(values < threshold)) if len(values) else 0.0
    axis.set(title=f"{label}: {len(values)} windows, {below:.0%} down-weighted", xlabel=f"p({label}) by {scorer}",
             ylabel="windows", xlim=(0, 1))
    axis.legend()
    figure.tight_layout()
    with atomic_output(path) as temp:
        figure.savefig(temp, format="png")
    plt.close(figure)
    return path
