"""The subject's neutral mesh is separated from expression."""

import numpy as np

from ned_outlier.reconstruction.fit import FLIP, FitConfig
from ned_outlier.reconstruction.identity import IdentityConfig, estimate_neutral
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model


def test_a_lasting_trait_is_identity_not_expression():
    """A face whose resting pose has AU04 at 0.8 plus a shape no AU can make, smiling in half of the frames:
    the neutral mesh absorbs both, so AUs measured against it are the smile alone."""
    model, _ = mediapipe_au_model()
    rng = np.random.default_rng(0)
    design = model.flat_basis
    shape = rng.normal(0, 2.0, design.shape[0])
    shape -= design @ np.linalg.lstsq(design, shape, rcond=None)[0]  # outside the AU span
    rest = np.zeros(model.n_aus)
    rest[model.index(["AU04"])] = 0.8
    subject = model.with_mean(model.mean + shape.reshape(-1, 3))
    smile = model.index(["AU12"])[0]
    frames = []
    for t in range(60):
        aus = rest.copy()
        aus[smile] = 0.9 if t % 2 else 0.0
        frames.append(1.3 * subject.vertices(aus) @ FLIP.T + [300, 200, 0])
    neutral = estimate_neutral(model, np.stack(frames), FitConfig(), IdentityConfig(neutral_percentile=5))
    expected = subject.vertices(rest)
    error = np.linalg.norm(neutral - expected, axis=1).mean()
    assert error < 0.5, error  # model units; a face is ~200 tall and the trait moves vertices by ~2-8
    assert np.linalg.norm(model.mean - expected, axis=1).mean() > 1.5  # so the test could have failed
