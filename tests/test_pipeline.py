"""The editing pipeline's per-frame factors: smooth in time, never above what a frame allows."""

import numpy as np

from ned_outlier.pipeline import smooth_limits


def test_a_one_frame_limit_ramps_in_and_out_and_never_exceeds_the_frame():
    limits = np.ones((21, 2))
    limits[10, 0] = 0.2  # vertex 0 folds on frame 10 only
    smoothed = smooth_limits(limits, np.ones(21, dtype=bool), sigma=2.0)
    assert (smoothed <= limits).all()
    assert smoothed[10, 0] == 0.2
    ramp = smoothed[10:, 0]
    assert (np.diff(ramp) >= 0).all() and ramp[1] < 0.9 and ramp[-1] == 1.0  # radius 4 + 4 frames later: whole
    assert (np.abs(np.diff(smoothed[:, 0])) < 0.5).all()  # no 0.8 step between two frames
    np.testing.assert_array_equal(smoothed[:, 1], 1.0)  # the other vertex is untouched


def test_runs_of_face_frames_are_smoothed_apart_and_sigma_zero_is_the_identity():
    limits = np.ones((12, 1))
    limits[5] = 0.3
    found = np.ones(12, dtype=bool)
    found[6] = False  # the face is lost between frames 5 and 7
    smoothed = smooth_limits(limits, found, sigma=2.0)
    assert smoothed[7:].min() == 1.0  # the next run does not inherit frame 5's limit
    assert smoothed[4] < 1.0
    np.testing.assert_array_equal(smooth_limits(limits, found, sigma=0.0), limits)
