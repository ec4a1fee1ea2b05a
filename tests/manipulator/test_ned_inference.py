"""NED inference: NED's Gaussian window, the geometric median, overlap-add, styles by seed and reference, mouth kept,
and edit.py's --manipulator ned."""

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ned_outlier.errors import UserError
from ned_outlier.manipulator.ned.checkpoint import save_ned
from ned_outlier.manipulator.ned.inference import NedManipulator, gaussian_window, geometric_median
from ned_outlier.manipulator.ned.networks import NedNetworkConfig, NedNetworks
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.reconstruction.params import ParamSchema
from tests.factories import face_params

_, SCHEMA = mediapipe_au_model()
E, M = len(SCHEMA.expression_names), len(SCHEMA.mouth_names)
SMALL = NedNetworkConfig(style_dim=4, mapping_hidden=8, generator_hidden=8, generator_head=8, trunk_hidden=(8, 8),
                         trunk_lstm=4, trunk_head=(8, 8))
EMOTIONS = ("neutral", "happy", "sad")


class AddStyleMean(nn.Module):
    """A stand-in generator: codes + the mean of the style, per window position (so overlap-add is checkable)."""

    def forward(self, codes, style):
        return codes + style.mean(dim=1)[:, None, None]


class ReturnCodes(nn.Module):
    """A stand-in generator that gives back the (standardised) codes it is given."""

    def forward(self, codes, style):
        return codes


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    return save_ned(NedNetworks(M + E, len(EMOTIONS), SMALL), tmp_path / "ned.safetensors", SCHEMA, EMOTIONS)


def source_params(frames=25, found=None, seed=0):
    rng = np.random.default_rng(seed)
    return face_params(rng.normal(size=(frames, E)), rng.normal(size=(frames, M)), found)


def test_gaussian_window_sums_to_one_and_peaks_in_the_middle():
    weights = gaussian_window(10)
    assert weights.sum() == pytest.approx(1.0) and np.argmax(weights) in (4, 5)
    np.testing.assert_allclose(weights, weights[::-1])


def test_geometric_median():
    assert geometric_median(np.array([[0.0], [1.0], [10.0]]))[0] == pytest.approx(1.0, abs=1e-4)
    square = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1.0, 1.0]])
    np.testing.assert_allclose(geometric_median(square), [1.0, 1.0], atol=1e-5)


def test_overlap_add_of_a_shifting_generator_is_that_shift(checkpoint):
    ned = NedManipulator(checkpoint)
    ned.nets.generator = AddStyleMean()
    found = np.ones(25, bool)
    found[[12, 13]] = False  # two runs: 12 frames and 11 frames
    params = source_params(found=found)
    style = torch.full((1, 4), 0.5)
    translated = ned.translate(params, style)
    codes = np.concatenate([params.mouth, params.expression], axis=1)
    np.testing.assert_allclose(translated[found], codes[found] + 0.5, rtol=1e-5)
    assert np.isnan(translated[~found]).all()
    short = source_params(frames=4)  # shorter than a window: one window
    np.testing.assert_allclose(ned.translate(short, style), np.concatenate([short.mouth, short.expression], 1) + 0.5,
                               rtol=1e-5)


def test_mouth_kept_intensity_and_seeded_styles(checkpoint):
    params = source_params()
    ned = NedManipulator(checkpoint, seed=3)
    target = ned.target_codes(params, emotion="happy")
    np.testing.assert_array_equal(target.mouth, params.mouth)
    assert not np.allclose(target.expression, params.expression)
    none = ned.target_codes(params, emotion="happy", intensity=0.0)
    np.testing.assert_allclose(none.expression, params.expression, atol=1e-6)
    again = NedManipulator(checkpoint, seed=3).target_codes(params, emotion="happy")
    np.testing.assert_array_equal(again.expression, target.expression)
    other = NedManipulator(checkpoint, seed=4).target_codes(params, emotion="happy")
    assert not np.allclose(other.expression, target.expression)
    edited = ned.target_codes(params, emotion="happy", mouth="edit")
    assert not np.allclose(edited.mouth, params.mouth)


def test_reference_style_is_the_geometric_median_of_its_windows(checkpoint):
    ned = NedManipulator(checkpoint)
    reference = source_params(frames=14, seed=5)
    codes = torch.from_numpy(np.concatenate([reference.mouth, reference.expression], axis=1))
    with torch.no_grad():
        styles = np.stack([ned.nets.style_encoder(codes[None, s:s + 10])[0].numpy() for s in range(5)])
    np.testing.assert_allclose(ned.reference_style(reference)[0].numpy(), geometric_median(styles), rtol=1e-5)


def test_errors(checkpoint, tmp_path):
    ned = NedManipulator(checkpoint)
    with pytest.raises(UserError, match="knows neutral, happy, sad, not 'angry'"):
        ned.target_codes(source_params(), emotion="angry")
    with pytest.raises(UserError, match="not found"):
        NedManipulator(tmp_path / "missing.safetensors")
    other = ParamSchema("deca-flame", tuple(f"exp{i}" for i in range(50)), ("jaw",), 5023)
    flame = save_ned(NedNetworks(51, 3, SMALL), tmp_path / "flame.safetensors", other, EMOTIONS)
    with pytest.raises(UserError, match="checkpoint .* made for parameters of backend 'deca-flame'"):
        NedManipulator(flame).target_codes(source_params(), emotion="sad")


def test_a_standardised_checkpoint_translates_in_the_codes_units(tmp_path):
    """The statistics travel in the checkpoint: the manipulator's output is destandardised, so a generator that
    returns its (standardised) input gives back the source codes; a checkpoint without them loads unstandardised."""
    torch.manual_seed(0)
    nets = NedNetworks(M + E, len(EMOTIONS), SMALL)
    params = source_params()
    nets.set_code_statistics(torch.from_numpy(np.concatenate([params.mouth, params.expression], 1)[None] * 3 + 1))
    path = save_ned(nets, tmp_path / "standardised.safetensors", SCHEMA, EMOTIONS)
    ned = NedManipulator(path)
    torch.testing.assert_close(ned.nets.code_scale, nets.code_scale)
    ned.nets.generator = ReturnCodes()
    target = ned.target_codes(params, emotion="sad", mouth="edit")
    np.testing.assert_allclose(target.expression, params.expression, atol=1e-5)
    np.testing.assert_allclose(target.mouth, params.mouth, atol=1e-5)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    state = {k: v for k, v in load_file(str(path)).items() if k not in ("code_mean", "code_scale")}
    save_file(state, str(tmp_path / "old.safetensors"), metadata=metadata)
    old = NedManipulator(tmp_path / "old.safetensors")
    assert old.nets.code_scale.eq(1).all() and old.nets.code_mean.eq(0).all()


class Zeros(nn.Module):
    """A stand-in generator that gives every frame the code 0: the person's neutral, for relative networks."""

    def forward(self, codes, style):
        return torch.zeros_like(codes)


def test_a_relative_checkpoint_reads_codes_minus_the_persons_neutral(tmp_path):
    torch.manual_seed(0)
    path = save_ned(NedNetworks(M + E, len(EMOTIONS), SMALL, relative_to_neutral=True), tmp_path / "rel.safetensors",
                    SCHEMA, EMOTIONS)
    ned = NedManipulator(path)
    assert ned.nets.relative_to_neutral
    ned.nets.generator = Zeros()
    params = source_params()
    codes = np.concatenate([params.mouth, params.expression], 1)
    neutral = np.arange(M + E, dtype=np.float32)
    style = ned.emotion_style("sad")
    np.testing.assert_allclose(ned.translate(params, style, neutral), np.tile(neutral, (len(codes), 1)), atol=1e-6)
    np.testing.assert_allclose(ned.translate(params, style), np.tile(np.median(codes, 0), (len(codes), 1)),
                               atol=1e-6)  # estimated from the clip itself
    given = ned.reference_style(params, neutral)
    assert not torch.allclose(given, ned.reference_style(params))
    windows = torch.from_numpy(codes[None, :10].astype(np.float32))
    torch.testing.assert_close(ned.nets.encode_style(windows, torch.from_numpy(neutral)[None]),
                               ned.nets.style_encoder(windows - torch.from_numpy(neutral)))
    with pytest.raises(ValueError, match="give `neutral`"):
        ned.nets.translate(windows, style)
    with safe_open(str(path), framework="pt") as handle:  # a file from before the flag: codes as they are
        metadata = {k: v for k, v in handle.metadata().items() if k != "codes"}
    save_file(load_file(str(path)), str(tmp_path / "old.safetensors"), metadata=metadata)
    old = NedManipulator(tmp_path / "old.safetensors")
    assert not old.nets.relative_to_neutral
    torch.testing.assert_close(old.nets.translate(windows, style, torch.ones(1, M + E)), old.nets.translate(windows,
                                                                                                          style))


def test_a_style_is_drawn_with_the_seed_given_or_the_manipulators(tmp_path):
    torch.manual_seed(0)
    path = save_ned(NedNetworks(M + E, len(EMOTIONS), SMALL), tmp_path / "ned.safetensors", SCHEMA, EMOTIONS)
    ned, other = NedManipulator(path, seed=3), NedManipulator(path, seed=5)
    torch.testing.assert_close(ned.emotion_style("sad", seed=5), other.emotion_style("sad"))
    torch.testing.assert_close(ned.emotion_style("sad", seed=None), NedManipulator(path, seed=3).emotion_style("sad"))
    assert not torch.allclose(ned.emotion_style("sad"), other.emotion_style("sad"))
