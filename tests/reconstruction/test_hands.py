"""Which hands count, and hands filled in between the frames the hand model ran on."""

import numpy as np

from ned_outlier.reconstruction.hands import fill_hands, hand_over_mouth, match_slots, real_hands
from ned_outlier.reconstruction.params import no_hands

# a face outline (square 100..200) inside a wider array, so that the slice passed on is not contiguous
FACE_COLUMNS = np.array([[100, 100, 0], [200, 100, 0], [200, 200, 0], [100, 200, 0], [150, 150, 0]], np.float32)
FACE = FACE_COLUMNS[:, :2]
LIPS = np.array([[135, 170], [165, 170], [165, 180], [135, 180]], np.float32)


def hand_at(x, y, spread=30.0):
    """21 landmarks on a 3 x 7 grid of `spread`-pixel cells with its top-left landmark at (x, y)."""
    grid = np.stack(np.meshgrid(np.arange(3), np.arange(7)), axis=-1).reshape(-1, 2)
    return np.array([x, y]) + spread * grid.astype(float)


def test_only_hands_reaching_in_from_beyond_the_face_count():
    cheek = hand_at(110, 110, spread=10)  # wholly inside the face: a phantom of the low-resolution crop
    reaching = hand_at(130, 160, spread=10)  # rows from y = 160 to 220: 2 of 7 rows (6 of 21 points) below the chin
    barely = hand_at(130, 150, spread=10)  # rows 150..210: only one row below the chin (3 of 21 < 25 %)
    kept = real_hands([cheek, reaching, barely], FACE)
    assert len(kept) == 1 and kept[0] is reaching
    assert not hand_over_mouth([cheek], FACE, LIPS, 0.12)
    assert hand_over_mouth([reaching], FACE, LIPS, 0.12)
    assert not hand_over_mouth([hand_at(300, 300)], FACE, LIPS, 0.12)  # outside the face, far from the mouth


def sequence(frames, checked_hands):
    """(T, 2, 21, 2) hands NaN but on the given {frame: [hand, ...]}; the checked mask: every third frame."""
    hands = no_hands(frames)
    checked = np.arange(frames) % 3 == 0
    for frame, found in checked_hands.items():
        for slot, hand in enumerate(found):
            hands[frame, slot] = hand
    return hands, checked


def test_a_hand_on_both_neighbouring_checked_frames_is_interpolated():
    a, b = hand_at(0, 0), hand_at(30, 60)
    hands, checked = sequence(7, {3: [a], 6: [b]})
    filled = fill_hands(hands, checked, every=3)
    np.testing.assert_allclose(filled[4, 0], a + (b - a) / 3, atol=1e-4)
    np.testing.assert_allclose(filled[5, 0], a + 2 * (b - a) / 3, atol=1e-4)
    np.testing.assert_array_equal(filled[3], hands[3])  # checked frames are kept
    assert np.isnan(filled[:3]).all() and np.isnan(filled[4:6, 1]).all()  # no hand before frame 3, one slot only


def test_a_hand_on_one_neighbour_only_is_not_spread():
    hands, checked = sequence(10, {3: [hand_at(0, 0)], 9: [hand_at(0, 0)]})  # frame 6 checked, without a hand
    filled = fill_hands(hands, checked, every=3)
    assert np.isnan(filled[[1, 2, 4, 5, 7, 8]]).all()


def test_different_hand_counts_take_the_nearer_checked_frame():
    one, other = hand_at(0, 0), hand_at(200, 0)
    hands, checked = sequence(4, {0: [one], 3: [one, other]})
    filled = fill_hands(hands, checked, every=3)
    np.testing.assert_array_equal(filled[1], filled[0])
    np.testing.assert_array_equal(filled[2], filled[3])


def test_gaps_longer_than_every_are_not_filled():
    hands, checked = sequence(7, {0: [hand_at(0, 0)], 6: [hand_at(0, 0)]})
    checked[3] = False  # the face was lost there: the hand model did not run
    assert np.isnan(fill_hands(hands, checked, every=3)[1:6]).all()


def test_two_hands_keep_their_slots_when_the_model_lists_them_the_other_way():
    left, right = hand_at(0, 0), hand_at(300, 0)
    hands, checked = sequence(4, {0: [left, right], 3: [right + 3, left + 3]})
    filled = fill_hands(hands, checked, every=3)
    np.testing.assert_allclose(filled[3, 0], left + 3)  # reordered to match frame 0
    np.testing.assert_allclose(filled[1, 0], left + 1, atol=1e-4)  # so interpolation never crosses the face
    np.testing.assert_allclose(filled[2, 1], right + 2, atol=1e-4)
    lone = match_slots(filled[3], np.stack([hand_at(300, 0), np.full((21, 2), np.nan)]))
    np.testing.assert_array_equal(lone[1], hand_at(300, 0))  # a lone right hand goes to the right hand's slot
