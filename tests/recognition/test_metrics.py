"""WAR, UAR and the confusion matrix against hand-computed cases."""

import numpy as np
import pytest

from recognition.metrics import confusion_matrix, per_class_recall, plot_confusion, uar, war


def test_hand_computed_case():
    # true:  0 0 0 0 1 1 2      pred: 0 0 0 1 1 0 2
    matrix = confusion_matrix([0, 0, 0, 0, 1, 1, 2], [0, 0, 0, 1, 1, 0, 2], 3)
    np.testing.assert_array_equal(matrix, [[3, 1, 0], [1, 1, 0], [0, 0, 1]])
    assert war(matrix) == pytest.approx(5 / 7)  # 5 correct of 7
    np.testing.assert_allclose(per_class_recall(matrix), [3 / 4, 1 / 2, 1.0])
    assert uar(matrix) == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)  # 0.75, unlike WAR's 0.714


def test_uar_skips_classes_without_samples_and_rewards_balance():
    matrix = confusion_matrix([0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0] * 10, 3)  # always "class 0"
    assert war(matrix) == pytest.approx(0.9)
    assert uar(matrix) == pytest.approx(0.5)  # class 2 has no sample: left out, not counted as 0 or 1
    assert np.isnan(per_class_recall(matrix)[2])


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels but"):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)


def test_confusion_png(tmp_path):
    matrix = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    path = plot_confusion(matrix, ["happy", "sad", "angry"], tmp_path / "confusion.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]
