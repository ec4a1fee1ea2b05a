"""The subject's own neutral mesh, so that AU intensities measure expression rather than face shape.

The AU model has no identity basis: fitted as is, a person's lasting traits are read as expression (low brows as
AU04, full lips as AU24). Two parts of the neutral face are estimated from a sample of frames:

1. The shape the AUs cannot express: the median model-space residual, projected off the AU span.
2. The part inside the AU span, which no single frame can tell from expression: the per-AU low percentile over the
   sample (the subject is assumed to be near neutral at least that often; cf. OpenFace's person-specific
   normalisation, which subtracts the median). AUs are then intensities relative to the subject's most neutral frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from ned_outlier.reconstruction.au_model import AUMeshModel
from ned_outlier.reconstruction.fit import AUFitter, FitConfig, FitResult


@dataclass(frozen=True)
class IdentityConfig:
    """max_frames: frames sampled evenly over the video for the estimate.
    neutral_percentile: per-AU percentile taken as the subject's neutral (0 disables the in-span part).
    """

    max_frames: int = 150
    neutral_percentile: float = 5.0


def fit_sequence(fitter: AUFitter, landmarks: Iterable[np.ndarray]) -> Iterator[FitResult]:
    """Fit (478, 3) landmarks of consecutive frames, each warm-started from the previous one (lazily)."""
    previous = None
    for frame_landmarks in landmarks:
        result = fitter.fit(frame_landmarks, previous)
        previous = result.aus
        yield result


def estimate_neutral(model: AUMeshModel, landmarks: np.ndarray, fit: FitConfig, config: IdentityConfig) -> np.ndarray:
    """(T, 478, 3) image-space landmarks of one face (NaN rows = frames without it) -> (478, 3) its neutral mesh
    in model space."""
    found = np.flatnonzero(~np.isnan(landmarks[:, 0, 0]))
    step = max(1, int(np.ceil(len(found) / config.max_frames)))
    sample = landmarks[found[::step]].astype(np.float64)
    first = list(fit_sequence(AUFitter(model, fit), sample))
    residuals = np.stack([r.pose.invert(lm) - model.vertices(r.aus) for r, lm in zip(first, sample)])
    offset = np.median(residuals, axis=0).reshape(-1)
    design = model.flat_basis
    offset -= design @ np.linalg.lstsq(design, offset, rcond=None)[0]  # keep only what no AU can express
    shaped = model.with_mean(model.mean + offset.reshape(model.mean.shape))
    if config.neutral_percentile <= 0:
        return shaped.mean
    aus = np.stack([r.aus for r in fit_sequence(AUFitter(shaped, fit), sample)])
    return shaped.vertices(np.percentile(aus, config.neutral_percentile, axis=0))
