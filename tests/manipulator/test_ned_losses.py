"""NED's loss terms and the outlier weight, each against a hand-computed case."""

import pytest
import torch

from ned_outlier.manipulator.ned.losses import (cycle_consistency, lsgan, mouth_correlation, outlier_weight,
                                                style_reconstruction, weighted_mean)


def test_outlier_weight_is_one_at_or_above_the_threshold_else_the_probability():
    weights = outlier_weight(torch.tensor([0.9, 0.6, 0.59, 0.1, 0.0]))
    torch.testing.assert_close(weights, torch.tensor([1.0, 1.0, 0.59, 0.1, 0.0]))
    torch.testing.assert_close(outlier_weight(torch.tensor([0.7]), threshold=0.8), torch.tensor([0.7]))


def test_weighted_mean_scales_without_renormalising():
    per_sample = torch.tensor([2.0, 4.0])
    assert weighted_mean(per_sample, torch.tensor([1.0, 0.5])).item() == pytest.approx((2 * 1 + 4 * 0.5) / 2)
    assert weighted_mean(per_sample, None).item() == pytest.approx(3.0)


def test_lsgan():
    scores = torch.tensor([0.5, 2.0, -1.0])
    torch.testing.assert_close(lsgan(scores, 1.0), torch.tensor([0.25, 1.0, 4.0]))
    torch.testing.assert_close(lsgan(scores, 0.0), torch.tensor([0.25, 4.0, 1.0]))


def test_style_reconstruction_and_cycle_are_mean_absolute_differences():
    predicted, target = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, -1.0]])
    torch.testing.assert_close(style_reconstruction(predicted, target), torch.tensor([1.5, 0.5]))
    real = torch.zeros(2, 2, 2)
    reconstructed = torch.tensor([[[1.0, -1.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.4]]])
    torch.testing.assert_close(cycle_consistency(reconstructed, real), torch.tensor([1.0, 0.1]))


def test_mouth_correlation_by_hand():
    # a = 1 2 3 4, b = 1 3 2 4: centred products sum to 4, each sum of squares is 5 -> r = 0.8
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    b = torch.tensor([1.0, 3.0, 2.0, 4.0])
    two_components = mouth_correlation(torch.stack([a, a], -1)[None], torch.stack([b, 2 * a + 1], -1)[None])
    torch.testing.assert_close(two_components, torch.tensor([(0.8 + 1.0) / 2]))
    torch.testing.assert_close(mouth_correlation(a[None, :, None], -a[None, :, None]), torch.tensor([-1.0]))
    still = mouth_correlation(torch.ones(1, 4, 1), a[None, :, None])  # a mouth that does not move: 0, not NaN
    torch.testing.assert_close(still, torch.tensor([0.0]))
