"""Fitting a landmark sequence: gaps stay NaN, smoothing smooths and keeps the mesh consistent with the codes."""

import dataclasses

import numpy as np

from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, fit_landmarks, pose_vertices


def noisy_sequence(frames=40, gap=(15, 20), noise=0.8, seed=0):
    """A face slowly smiling, observed with landmark noise (pixels), missing in frames gap[0]:gap[1]."""
    model, _ = mediapipe_au_model()
    rng = np.random.default_rng(seed)
    aus = np.zeros((frames, model.n_aus))
    aus[:, model.index(["AU12"])[0]] = np.linspace(0, 1, frames)
    landmarks = 1.5 * model.vertices(aus) @ FLIP.T + [320, 180, 0] + rng.normal(0, noise, (frames, 478, 3))
    landmarks[gap[0] : gap[1]] = np.nan
    return model, landmarks.astype(np.float32)


def test_gaps_stay_nan_and_the_rest_is_fitted():
    model, landmarks = noisy_sequence()
    out = fit_landmarks(landmarks, model, ReconstructionConfig(), progress=False)
    missing = np.isnan(landmarks[:, 0, 0])
    assert np.isnan(out["aus"][missing]).all() and np.isnan(out["vertices"][missing]).all()
    assert np.isfinite(out["aus"][~missing]).all()
    assert np.nanmedian(out["fit_error"]) < 0.02


def test_smoothing_reduces_jitter_and_keeps_mesh_consistent():
    model, landmarks = noisy_sequence(noise=2.0)
    raw = fit_landmarks(landmarks, model, ReconstructionConfig(), progress=False)
    smooth = fit_landmarks(landmarks, model, dataclasses.replace(ReconstructionConfig(), smooth_sigma=2.0), False)
    jitter = lambda aus: np.nanmean(np.abs(np.diff(aus, axis=0)))  # noqa: E731
    assert jitter(smooth["aus"]) < 0.6 * jitter(raw["aus"])
    rows = np.flatnonzero(np.isfinite(smooth["scale"]))
    subject = model.with_mean(smooth["identity"])
    expected = pose_vertices(subject, smooth["aus"][rows], smooth["rotation"][rows], smooth["scale"][rows],
                             smooth["translation"][rows])
    np.testing.assert_allclose(smooth["vertices"][rows], expected, atol=1e-2)
    np.testing.assert_allclose(np.linalg.det(smooth["rotation"][rows]), 1.0, atol=1e-5)
