"""Loading DECA's deca_model.tar and EMOCA's checkpoint, on synthetic files with the real key names and shapes:
weights reproduced exactly, any layout mismatch refused by key, missing files explained, nothing from a pickle run."""

from __future__ import annotations

import os

import pytest
import torch

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.deca.checkpoint import (
    DECA_MODEL_ENV,
    EMOCA_MODEL_ENV,
    _load_exact,
    load_deca_encoder,
    load_emoca,
)
from ned_outlier.reconstruction.deca.encoder import DecaEncoder, EmocaExpressionEncoder
from tests.reconstruction.deca_fixture import (
    DECA_OUTPUTS,
    EMOCA_OUTPUTS,
    random_state,
    reference_forward,
    regressor_shapes,
    write_deca_checkpoint,
    write_emoca_checkpoint,
)


@pytest.fixture(scope="module")
def e_flame():
    return random_state(regressor_shapes(DECA_OUTPUTS), seed=0)


@pytest.fixture(scope="module")
def e_expression():
    return random_state(regressor_shapes(EMOCA_OUTPUTS), seed=1)


@pytest.fixture(scope="module")
def deca_file(tmp_path_factory, e_flame):
    return write_deca_checkpoint(tmp_path_factory.mktemp("deca") / "deca_model.tar", e_flame)


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(5))


def assert_same_weights(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = module.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_deca_model_loads_exactly_and_matches_the_architecture(deca_file, e_flame, images):
    encoder = load_deca_encoder(deca_file)
    assert_same_weights(encoder, e_flame)
    assert not encoder.training
    built = DecaEncoder()
    built.load_state_dict(e_flame, strict=True)
    with torch.no_grad():
        codes, expected = encoder(images), built.eval()(images)
        reference = reference_forward(e_flame, images)
    for name in ("shape", "tex", "exp", "pose", "cam", "light"):
        assert torch.equal(getattr(codes, name), getattr(expected, name)), name
    vector = torch.cat([codes.shape, codes.tex, codes.exp, codes.pose, codes.cam, codes.light.flatten(1)], dim=1)
    assert torch.isfinite(vector).all() and vector.std() > 0.1 and not torch.allclose(vector[0], vector[1])
    torch.testing.assert_close(vector, reference, rtol=1e-4, atol=1e-4 * reference.abs().max().item())


@pytest.mark.parametrize("change, expected", [
    ("misshape", ["'encoder.layer3.4.conv2.weight' has shape (256, 256, 1, 1)", "expected shape (256, 256, 3, 3)",
                  "0 missing, 0 unexpected, 1 of wrong shape"]),
    ("drop", ["'encoder.layer4.2.bn3.running_var' (shape (2048,)) is missing", "1 missing, 0 unexpected"]),
    ("add", ["unexpected key 'encoder.fc.weight' (shape (1000, 2048))", "0 missing, 1 unexpected"]),
])
def test_a_checkpoint_off_the_layout_is_refused_naming_the_key(tmp_path, e_flame, change, expected):
    state = dict(e_flame)
    if change == "misshape":
        state["encoder.layer3.4.conv2.weight"] = torch.zeros(256, 256, 1, 1)
    elif change == "drop":
        del state["encoder.layer4.2.bn3.running_var"]
    else:
        state["encoder.fc.weight"] = torch.zeros(1000, 2048)
    path = write_deca_checkpoint(tmp_path / "deca_model.tar", state)
    with pytest.raises(UserError) as refused:
        load_deca_encoder(path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and "E_flame" in message
    for part in expected:
        assert part in message


def test_batchnorm_counters_may_be_absent_but_nothing_else(e_flame):
    without_counters = {k: v for k, v in e_flame.items() if not k.endswith("num_batches_tracked")}
    encoder = DecaEncoder()
    _load_exact(encoder, without_counters, "deca_model.tar", "E_flame")
    assert torch.equal(encoder.state_dict()["encoder.layer2.1.bn2.weight"], e_flame["encoder.layer2.1.bn2.weight"])
    as_ints = dict(e_flame, **{"layers.0.bias": torch.zeros(1024, dtype=torch.int64)})
    with pytest.raises(UserError, match="'layers.0.bias' has shape \\(1024,\\) torch.int64"):
        _load_exact(DecaEncoder(), as_ints, "deca_model.tar", "E_flame")


def test_missing_files_say_where_to_give_them_and_where_to_register(tmp_path, monkeypatch):
    monkeypatch.delenv(DECA_MODEL_ENV, raising=False)
    monkeypatch.delenv(EMOCA_MODEL_ENV, raising=False)
    with pytest.raises(UserError) as missing:
        load_deca_encoder(tmp_path / "nowhere" / "deca_model.tar")
    message = str(missing.value)
    assert "\n" not in message and str(tmp_path / "nowhere" / "deca_model.tar") in message
    for part in ("--deca-model", "flame.deca_model", "DECA_MODEL_PATH", "https://deca.is.tue.mpg.de",
                 "https://flame.is.tue.mpg.de"):
        assert part in message
    with pytest.raises(UserError, match="^no DECA model given: .*DECA_MODEL_PATH"):
        load_deca_encoder()
    monkeypatch.setenv(DECA_MODEL_ENV, str(tmp_path / "from_env.tar"))
    with pytest.raises(UserError, match="from_env.tar not found"):
        load_deca_encoder()
    with pytest.raises(UserError) as missing:
        load_emoca()
    message = str(missing.value)
    for part in ("--emoca-model", "EMOCA_MODEL_PATH", "https://emoca.is.tue.mpg.de", "https://flame.is.tue.mpg.de"):
        assert part in message


def test_files_that_are_not_the_checkpoints_are_refused(tmp_path, deca_file):
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="cannot read the DECA checkpoint .*garbage.tar"):
        load_deca_encoder(garbage)
    other = tmp_path / "other.tar"
    torch.save({"model": {"weight": torch.zeros(2)}}, other)
    with pytest.raises(UserError, match="holds no 'E_flame' state dict"):
        load_deca_encoder(other)
    with pytest.raises(UserError, match="no 'state_dict'"):
        load_emoca(deca_file)


def test_emoca_checkpoint_loads_both_encoders_exactly(tmp_path, e_flame, e_expression, images):
    folder = tmp_path / "EMOCA" / "detail" / "checkpoints" / "deca-epoch=03-val_loss"
    folder.mkdir(parents=True)
    write_emoca_checkpoint(folder / "dataloader_idx_0=9.44489288.ckpt", e_flame, e_expression)
    model = load_emoca(tmp_path / "EMOCA")  # the model folder: its one .ckpt
    assert_same_weights(model.flame_encoder, e_flame)
    assert_same_weights(model.expression_encoder, e_expression)
    assert not model.training
    with torch.no_grad():
        codes = model(images)
        expression = EmocaExpressionEncoder()
        expression.load_state_dict(e_expression, strict=True)
        torch.testing.assert_close(codes.exp, expression.eval()(images), rtol=0, atol=0)
        deca = reference_forward(e_flame, images)
    torch.testing.assert_close(codes.pose, deca[:, 200:206], rtol=1e-4, atol=1e-4 * deca.abs().max().item())
    assert not torch.allclose(codes.exp, deca[:, 150:200])


def test_emoca_with_a_jaw_predicting_expression_head_is_refused(tmp_path, e_expression):
    jaw_variant = dict(e_expression, **{"layers.2.weight": torch.zeros(53, 1024), "layers.2.bias": torch.zeros(53)})
    path = write_emoca_checkpoint(tmp_path / "emoca.ckpt", None, jaw_variant)
    with pytest.raises(UserError, match="'deca.E_expression.layers.2.weight' has shape \\(53, 1024\\) "
                                        "torch.float32, expected shape \\(50, 1024\\)"):
        load_emoca(path)


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "callbacks": RunsACommand(marker)}, path)
    with pytest.raises(UserError, match="cannot read the EMOCA checkpoint .*evil.ckpt .*posix.system"):
        load_emoca(path)
    assert not marker.exists()
