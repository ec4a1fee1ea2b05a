"""Donor choice for mouth re-synthesis: Viterbi by hand, nearest states, no flicker, fallback when too far."""

from dataclasses import replace

import numpy as np

from ned_outlier.renderer.mouth import MouthConfig, choose_donors, donor_mix, donor_segments, viterbi


def test_viterbi_hand_computed():
    # Two rows, two candidates each. Labels: row 0 donors (10, 20), row 1 donors (11, 30).
    unary = np.array([[1.0, 0.0], [0.0, 0.5]])
    labels = np.array([[10, 20], [11, 30]])
    # paths: 10->11: 1 + 0 + 0 = 1.0; 10->30: 1 + 5 + 0.5 = 6.5; 20->11: 0 + 5 + 0 = 5; 20->30: 0 + 5 + 0.5 = 5.5
    np.testing.assert_array_equal(viterbi(unary, labels, switch_cost=5.0), [0, 0])
    # with switching free, each row takes its own best: 20 then 11 (0 + 0)
    np.testing.assert_array_equal(viterbi(unary, labels, switch_cost=0.0), [1, 0])


def test_donors_match_states_play_on_and_fall_back():
    rng = np.random.default_rng(0)
    donor_states = rng.normal(size=(50, 6))
    # targets: frames 0-9 want donors 20..29 in order (plus tiny noise), frame 10 wants nothing close
    target_states = np.concatenate([donor_states[20:30] + rng.normal(0, 0.01, (10, 6)), [np.full(6, 40.0)]])
    pose = np.zeros((50, 2))
    config = MouthConfig(candidates=5, switch_cost=0.5, max_distance=1.0, pose_weight=0.0)
    donors, distance = choose_donors(target_states, donor_states, np.zeros((11, 2)), pose, np.ones(11, bool),
                                     np.ones(50, bool), config)
    np.testing.assert_array_equal(donors[:10], np.arange(20, 30))
    assert donors[10] == -1 and distance[10] > 1.0


def test_switch_cost_prevents_flicker_between_two_near_donors():
    """Two donors (frames 0 and 5, not consecutive) equally good, noise decides frame by frame: with a switch cost
    the choice holds still."""
    donor_states = np.array([[0.0], [9.0], [9.0], [9.0], [9.0], [1.0]])
    usable = np.array([True, False, False, False, False, True])
    rng = np.random.default_rng(1)
    target_states = 0.5 + rng.normal(0, 0.05, (30, 1))
    poses = np.zeros((30, 2)), np.zeros((6, 2))
    config = MouthConfig(candidates=2, switch_cost=0.5, max_distance=10.0, pose_weight=0.0)
    donors, _ = choose_donors(target_states, donor_states, *poses, np.ones(30, bool), usable, config)
    assert len(set(donors.tolist())) == 1
    free = MouthConfig(candidates=2, switch_cost=0.0, max_distance=10.0, pose_weight=0.0)
    flicker, _ = choose_donors(target_states, donor_states, *poses, np.ones(30, bool), usable, free)
    assert set(flicker.tolist()) == {0, 5}  # the test could fail: without the cost it does flicker


def test_a_donor_must_beat_the_frames_own_mouth():
    """A donor no closer than min_gain times the frame's own distance to the target is not worth pasting."""
    donor_states = np.array([[0.0], [10.0]])
    target_states = np.array([[4.0]])
    config = MouthConfig(candidates=2, switch_cost=0.0, max_distance=50.0, pose_weight=0.0, min_gain=0.8)
    args = (target_states, donor_states, np.zeros((1, 2)), np.zeros((2, 2)), np.ones(1, bool), np.ones(2, bool), config)
    donors, _ = choose_donors(*args, own_distance=np.array([4.5]))  # best donor at 4.0 > 0.8 * 4.5
    assert donors[0] == -1
    donors, _ = choose_donors(*args, own_distance=np.array([6.0]))  # 4.0 <= 0.8 * 6.0
    assert donors[0] == 0


def test_a_donor_filmed_farther_away_pays_for_its_magnification():
    """Donor 0 matches the target's mouth better (distance 1.0 against 1.5) but its face is 20 % smaller: pasted, it
    is magnified by 1.25. With upscale_weight 3 that costs 3 ln 1.25 = 0.67 > 0.5, so the near donor 1 wins; a
    donor larger than the target (2.0: shrunk when pasted) costs nothing."""
    donor_states = np.array([[1.0], [1.5]])
    target_states = np.array([[0.0]])
    args = (target_states, donor_states, np.zeros((1, 2)), np.zeros((2, 2)), np.ones(1, bool), np.ones(2, bool))
    config = MouthConfig(candidates=2, switch_cost=0.0, max_distance=50.0, pose_weight=0.0, upscale_weight=3.0)
    assert choose_donors(*args, config, scales=(np.array([1.0]), np.array([0.8, 1.0])))[0][0] == 1
    assert choose_donors(*args, config, scales=(np.array([1.0]), np.array([2.0, 1.0])))[0][0] == 0
    assert choose_donors(*args, replace(config, upscale_weight=0.0),
                         scales=(np.array([1.0]), np.array([0.8, 1.0])))[0][0] == 0


def test_segments_break_at_switches_and_gaps_but_not_where_a_donor_plays_on():
    donors = np.array([-1, -1, 7, 8, 8, 3, 3, -1, -1, 4, 5])
    found = np.array([True] * 8 + [False, True, True])
    # 0-1 own mouth | 2-4 donor 7 playing on and holding | 5-6 donor 3 | 7 own | 8 no face | 9-10 donor 4 playing on
    np.testing.assert_array_equal(donor_segments(donors, found), [0, 0, 1, 1, 1, 2, 2, 3, 4, 5, 5])


def test_a_switch_dissolves_linearly_over_five_frames():
    # frames 0-4 keep their own mouth, 5-9 take donor 30 (holding): radius 2 -> weights of donor 30 along the
    # switch 0, 1/5, 2/5, 3/5, 4/5, 1 at frames 2..7
    donors = np.array([-1] * 5 + [30] * 5)
    found = np.ones(10, bool)
    segments = donor_segments(donors, found)
    share = [dict(donor_mix(donors, segments, found, index, radius=2)).get(30, 0.0) for index in range(10)]
    np.testing.assert_allclose(share, [0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1, 1, 1], atol=1e-12)
    assert donor_mix(donors, segments, found, 4, radius=0) == [(-1, 1.0)]  # radius 0: a hard cut


def test_a_dissolve_shows_each_side_by_its_donor_nearest_the_frame_and_stops_at_a_gap():
    # donor 10 playing on (10, 11, 12) switches to donor 50 at frame 3; frame 5 has no face
    donors = np.array([10, 11, 12, 50, 51, -1, 60])
    found = np.array([True, True, True, True, True, False, True])
    segments = donor_segments(donors, found)
    assert donor_mix(donors, segments, found, 2, radius=2) == [(12, 0.6), (50, 0.4)]
    assert donor_mix(donors, segments, found, 3, radius=2) == [(12, 0.4), (50, 0.6)]
    # frame 4: the window 2..6 is cut at the gap; its clipped end counts for donor 51's segment
    assert donor_mix(donors, segments, found, 4, radius=2) == [(12, 0.2), (51, 0.8)]
    assert donor_mix(donors, segments, found, 6, radius=2) == [(60, 1.0)]  # alone after the gap
