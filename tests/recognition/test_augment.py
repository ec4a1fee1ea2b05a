"""Training-image jitter, by hand: nothing when off, exact shifts and quarter turns, brightness and contrast; the
draws of a sample depend on the seed, the epoch and the sample only."""

import torch

from recognition.training import data
from recognition.training.config import Augmentation


def at_bounds(monkeypatch):
    """Every random draw returns its upper bound."""
    monkeypatch.setattr(data, "_uniform", lambda bound, generator=None: float(bound))


def test_no_bounds_no_change():
    image = torch.rand(3, 8, 8)
    assert data.jitter(image, Augmentation()) is image


def test_shift_moves_content_by_the_fraction_of_the_side(monkeypatch):
    at_bounds(monkeypatch)
    image = torch.zeros(1, 8, 8)
    image[0, 4, 3] = 1.0
    shifted = data.jitter(image, Augmentation(shift=0.25))  # a quarter of 8 pixels, right and down
    expected = torch.zeros(1, 8, 8)
    expected[0, 6, 5] = 1.0
    torch.testing.assert_close(shifted, expected)


def test_quarter_turn_is_a_pixel_permutation(monkeypatch):
    at_bounds(monkeypatch)
    image = torch.arange(3 * 6 * 6, dtype=torch.float32).reshape(3, 6, 6)
    turned = data.jitter(image, Augmentation(rotation=90.0))
    # out(x, y) = in(y, -x) in centred coordinates: out[r, c] = in[S - 1 - c, r], torch.rot90 clockwise
    torch.testing.assert_close(turned, torch.rot90(image, k=-1, dims=(-2, -1)))


def test_scale_above_one_zooms_in(monkeypatch):
    at_bounds(monkeypatch)
    image = torch.zeros(1, 8, 8)
    image[0, 2:6, 2:6] = 1.0  # a 4-pixel square in the middle
    zoomed = data.jitter(image, Augmentation(scale=1.0))  # 2x about the centre: output pixel p samples the input
    # at (p - 3.5) / 2 + 3.5, so pixels 1..6 land inside the square and pixel 0 at 1.75, 3/4 of the way into it
    torch.testing.assert_close(zoomed[0, 1:7, 1:7], torch.ones(6, 6))
    assert zoomed[0, 0, 3] == 0.75 and zoomed[0, 3, 7] == 0.75 and zoomed[0, 0, 0] == 0.75**2


def test_brightness_and_contrast_by_hand(monkeypatch):
    at_bounds(monkeypatch)
    image = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    mean, std = 1.5, image.std()
    contrasted = data.jitter(image, Augmentation(contrast=0.5))
    torch.testing.assert_close(contrasted, mean + (image - mean) * 1.5)
    brighter = data.jitter(image, Augmentation(brightness=0.2))
    torch.testing.assert_close(brighter, image + 0.2 * std)


def test_a_samples_draws_depend_on_seed_epoch_and_sample_only():
    faces = data.EpochDraws()
    first = torch.rand(16, generator=faces.draws(3))
    torch.rand(100)  # torch's global RNG moving on (dropout, another loader) changes nothing
    assert torch.equal(torch.rand(16, generator=faces.draws(3)), first)
    assert not torch.equal(torch.rand(16, generator=faces.draws(4)), first)
    faces.set_epoch(1)
    assert not torch.equal(torch.rand(16, generator=faces.draws(3)), first)
    faces.set_epoch(0)
    faces.seed = 1
    assert not torch.equal(torch.rand(16, generator=faces.draws(3)), first)
