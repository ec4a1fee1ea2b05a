"""The class orders of pretrained classifiers and datasets, on the project's emotion vocabulary (ned_outlier.labels).

    FER2013_LABELS                  # fer's output order in canonical names
    reorder(probs, EXPCLIP_ORDER, EMOTIONS)   # columns from one class order to another
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ned_outlier.errors import UserError
from ned_outlier.labels import EMOTIONS, normalise_emotion

__all__ = ["EMOTIONS", "normalise_emotion", "FER2013_CLASSES", "FER2013_LABELS", "RAFDB_ORDER", "AFFECTNET_ORDER",
           "EXPCLIP_ORDER", "reorder"]

FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013's class order (its label indices 0-6), in the dataset's own names."""


FER2013_LABELS = tuple(normalise_emotion(name) for name in FER2013_CLASSES)
"""FER2013's class order in canonical names: angry, disgusted, fear, happy, sad, surprised, neutral."""

# The class orders of datasets and papers (index i = label i), in canonical names.
RAFDB_ORDER = ("surprised", "fear", "disgusted", "happy", "sad", "angry", "neutral")
"""RAF-DB basic expressions, list-file labels 1..7 (index = label - 1)."""
AFFECTNET_ORDER = ("neutral", "happy", "sad", "surprised", "fear", "disgusted", "angry", "contempt")
"""AffectNet's native expression codes 0..7 (8 = none, 9 = uncertain, 10 = no face are not emotions)."""
EXPCLIP_ORDER = ("happy", "sad", "neutral", "angry", "surprised", "disgusted", "fear", "contempt")
"""Exp-CLIP's order: Happiness, Sadness, Neutral, Anger, Surprise, Disgust, Fear, Contempt (first 7 without contempt)."""


def reorder(values: np.ndarray, from_order: Sequence[str], to_order: Sequence[str]) -> np.ndarray:
    """Columns of `values` (..., len(from_order)) rearranged into `to_order` (..., len(to_order)).

    Every class of `to_order` must be in `from_order` (a UserError names the missing ones); extra classes of
    `from_order` are dropped.
    """
    missing = [name for name in to_order if name not in from_order]
    if missing:
        raise UserError(f"cannot map classes {', '.join(from_order)} onto {', '.join(to_order)}: "
                        f"missing {', '.join(missing)}")
    return np.asarray(values)[..., [list(from_order).index(name) for name in to_order]]

