"""Hand masks and vertex weights on synthetic hands: silhouettes follow the bones, weights follow the distance."""

import numpy as np
import pytest

from ned_outlier.reconstruction.edit_basis import smoothstep
from ned_outlier.renderer.occlusion import (
    BONE_RADIUS, OcclusionConfig, face_width, hand_mask, hand_size, mouth_hold_weights, vertex_weights,
)

SHAPE = (360, 640)


def open_hand(wrist=(300.0, 300.0), scale=1.0):
    """A right hand, fingers up and spread, 21 MediaPipe landmarks (21, 2) in frame pixels; wrist to middle
    knuckle 80 px at scale 1."""
    x, y = wrist
    base = {0: (0, 0), 5: (-30, -75), 9: (0, -80), 13: (25, -75), 17: (45, -65)}
    points = np.zeros((21, 2))
    points[0] = base[0]
    points[1:5] = [(-30, -20), (-50, -40), (-65, -55), (-80, -70)]  # thumb, out to the left
    for knuckle, direction in ((5, (-0.35, -1)), (9, (0, -1)), (13, (0.3, -1)), (17, (0.6, -1))):
        points[knuckle] = base[knuckle]
        for step in (1, 2, 3):
            points[knuckle + step] = np.array(base[knuckle]) + 28 * step * np.array(direction) / np.hypot(*direction)
    return points * scale + [x, y]


def line_hand(y=180.0, x0=200.0, x1=400.0):
    """A degenerate 'hand' with every landmark on the segment y = const from x0 to x1 (wrist at x0, middle
    knuckle at x1): its silhouette is a band of known half-width round(BONE_RADIUS * 200) about that segment."""
    x = np.linspace(x0, x1, 21)
    hand = np.stack([x, np.full(21, y)], axis=1)
    hand[9] = (x1, y)
    hand[0] = (x0, y)
    return hand


def test_mask_covers_the_bones_and_not_the_gaps_between_spread_fingers():
    hand = open_hand()
    mask = hand_mask(hand[None], SHAPE, grow_px=0.0, feather_px=4.0)
    assert mask.shape == SHAPE and mask.dtype == np.float32 and 0 <= mask.min() and mask.max() <= 1
    for start, stop in ((0, 9), (9, 12), (5, 8), (17, 20), (1, 4), (13, 16)):
        for t in np.linspace(0, 1, 7):
            x, y = (1 - t) * hand[start] + t * hand[stop]
            assert mask[int(round(y)), int(round(x))] > 0.97, (start, stop, t)
    # between the index and middle fingertips (a convex hull would cover it), and far from the hand
    between = (hand[8] + hand[12]) / 2
    assert mask[int(round(between[1])), int(round(between[0]))] < 0.05
    assert mask[50, 600] == 0 and mask[300, 100] == 0
    palm = hand[[0, 5, 9, 13, 17]].mean(axis=0)
    assert mask[int(palm[1]), int(palm[0])] > 0.99


def test_mask_grows_and_feathers_by_the_given_pixels():
    hand = line_hand()
    radius = round(BONE_RADIUS * hand_size(hand))
    mask = hand_mask(hand[None], SHAPE, grow_px=5.0, feather_px=8.0)
    column = mask[:, 300]
    assert column[180 - radius - 5] > 0.97 and column[180 + radius + 5] > 0.97  # within the grown silhouette
    assert column[180 + radius + 9] == pytest.approx(0.5, abs=0.15)  # halfway through the feather
    assert column[180 + radius + 5 + 8 + 1] < 0.03 and column[180 - radius - 5 - 8 - 1] < 0.03
    assert (np.diff(column[180:]) <= 1e-6).all()  # falls off monotonically


def test_absent_hands_give_an_empty_mask_and_unit_weights():
    nan_hands = np.full((2, 21, 2), np.nan, dtype=np.float32)
    mask = hand_mask(nan_hands, SHAPE, 4.0, 8.0)
    assert mask.shape == SHAPE and mask.dtype == np.float32 and not mask.any()
    points = np.random.default_rng(0).uniform([0, 0], [640, 360], (478, 2))
    weights = vertex_weights(points, nan_hands, SHAPE, 10.0)
    assert weights.shape == (478,) and weights.dtype == np.float32 and (weights == 1).all()


def test_one_absent_slot_leaves_the_other_hand():
    hands = np.full((2, 21, 2), np.nan)
    hands[1] = open_hand()
    assert hand_mask(hands, SHAPE, 0.0, 4.0)[300, 300] > 0.97
    assert vertex_weights(np.array([[300.0, 300.0]]), hands, SHAPE, 10.0)[0] == 0


def test_weights_follow_the_smoothstep_of_the_distance_to_the_silhouette():
    hand = line_hand()
    radius = round(BONE_RADIUS * hand_size(hand))
    margin = 40.0
    distances = np.array([0.0, 20.0, 40.0, 50.0, 60.0, 70.0, 80.0, 100.0])  # from the silhouette's edge
    points = np.stack([np.full(len(distances), 300.0), 180 + radius + distances], axis=1)
    weights = vertex_weights(points, hand[None], SHAPE, margin)
    assert weights.shape == (len(distances),) and weights.dtype == np.float32
    # by hand: 0 up to the margin, 3x^2 - 2x^3 of x = (d - margin) / margin, 1 from 2 * margin
    expected = [0, 0, 0, 0.15625, 0.5, 0.84375, 1, 1]
    np.testing.assert_allclose(weights, expected, atol=0.06)
    # the raster puts the edge within a pixel: the value lies between those one pixel nearer and farther
    low, high = smoothstep((distances - 1 - margin) / margin), smoothstep((distances + 1 - margin) / margin)
    assert ((weights >= low - 1e-6) & (weights <= high + 1e-6)).all()
    # beside the end of the segment: the distance is to the rounded end, not to the infinite line
    beyond_end = vertex_weights(np.array([[400.0 + radius + 60, 180.0]]), hand[None], SHAPE, margin)
    assert beyond_end[0] == pytest.approx(0.5, abs=0.06)


def test_points_inside_a_hand_and_nan_points():
    hand = open_hand()
    points = np.array([hand[9], hand[0], [np.nan, np.nan], [600.0, 20.0]])
    weights = vertex_weights(points, hand[None], SHAPE, 10.0)
    np.testing.assert_array_equal(weights, [0, 0, 1, 1])


def test_points_far_from_the_hand_are_one_even_off_frame():
    hand = open_hand(wrist=(600.0, 340.0))  # the pinky's knuckle (645, 275) lies beyond the frame's right edge
    points = np.array([[50.0, 50.0], hand[17], [-30.0, 10.0], [700.0, 400.0]])
    np.testing.assert_array_equal(vertex_weights(points, hand[None], SHAPE, 10.0), [1, 0, 1, 1])
    assert hand_mask(hand[None], SHAPE, 4.0, 8.0)[284, 639] > 0.97  # where the palm's edge 0-17 leaves the frame


def test_config_scales_with_the_face_width():
    face = np.array([[100.0, 50.0, 0.0], [300.0, 60.0, 1.0], [np.nan, np.nan, np.nan]])
    assert face_width(face) == 200.0
    grow, feather, margin = OcclusionConfig(grow=0.02, feather=0.04, margin=0.05).in_pixels(200.0)
    assert (grow, feather, margin) == pytest.approx((4.0, 8.0, 10.0))


def test_mouth_hold_weights_follow_the_smoothstep_of_the_distance_to_the_lips():
    # lips: the square 100..140 x 200..220 (its corners and two mid-edge points, in no particular order); reach 10
    lips = np.array([[140, 220], [100, 200], [120, 200], [140, 200], [100, 220], [120, 220]], float)
    points = np.array([[120, 210],   # inside: 0
                       [150, 210],   # 10 px right of the hull: d = reach -> 0
                       [155, 210],   # 15 px: smoothstep(0.5) = 0.5
                       [120, 237.5],  # 17.5 px below: smoothstep(0.75) = 0.84375
                       [170, 210],   # 30 px: 1
                       [100, 170]])  # 30 px above a corner: 1
    np.testing.assert_allclose(mouth_hold_weights(points, lips, 10.0), [0, 0, 0.5, 0.84375, 1, 1], atol=1e-6)
    assert (mouth_hold_weights(points, lips, 0.0) == 1).all()  # off
