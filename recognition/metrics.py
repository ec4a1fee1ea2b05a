"""Classification metrics of the papers: WAR (overall accuracy), UAR (mean per-class recall), confusion matrix.

    matrix = confusion_matrix(y_true, y_pred, n_classes)     # rows: true class, columns: predicted
    war(matrix), uar(matrix), per_class_recall(matrix)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """(C, C) int64 counts: entry [i, j] = samples of true class i predicted as j."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    if len(y_true) and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= n_classes):
        raise ValueError(f"class indices must lie in [0, {n_classes})")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def war(matrix: np.ndarray) -> float:
    """Weighted average recall = overall accuracy: trace / total."""
    return float(np.trace(matrix) / matrix.sum())


def per_class_recall(matrix: np.ndarray) -> np.ndarray:
    """(C,) recall of each true class (NaN for a class with no sample)."""
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def uar(matrix: np.ndarray) -> float:
    """Unweighted average recall: the mean of per-class recalls over the classes that have samples."""
    return float(np.nanmean(per_class_recall(matrix)))


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG (counts in each cell), written atomically."""
    from ned_outlier.io.atomic import atomic_output

    with atomic_output(path) as temp:
        save_confusion(matrix, labels, temp, title)
    return Path(path)


def save_confusion(matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "") -> None:
    """plot_confusion's PNG written straight to `path` (for a temporary file of a set: atomic_outputs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    support = matrix.sum(axis=1, keepdims=True)
    rates = np.divide(matrix, support, out=np.zeros(matrix.shape, dtype=float), where=support > 0)
    figure, axes = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.7 * len(labels)))
    image = axes.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(j, i, str(count), ha="center", va="center", color="white" if rates[i, j] > 0.5 else "black")
    axes.set_title(title or f"WAR {war(matrix):.3f}  UAR {uar(matrix):.3f}")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    try:
        figure.savefig(path, format="png", dpi=120)
    finally:
        plt.close(figure)
