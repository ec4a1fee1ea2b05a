"""CNN baselines: backbone + two dense layers, offline random init, the user's ImageNet weights from a file."""

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from ned_outlier.errors import UserError
from recognition import create_model, list_models


def test_registered():
    assert set(list_models("cnn-*")) == {"cnn-mobilenetv2", "cnn-efficientnet-b0", "cnn-efficientnet-b2"}


@pytest.mark.parametrize("name, size, classes", [("cnn-mobilenetv2", 224, 7), ("cnn-efficientnet-b2", 260, 8)])
def test_shapes_labels_and_two_dense_layers(name, size, classes):
    torch.manual_seed(0)
    model = create_model(name, num_classes=classes, hidden=64)
    assert len(model.labels) == classes and ("contempt" in model.labels) == (classes == 8)
    linear = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linear] == [(model.backbone.num_features, 64), (64, classes)]
    face = np.random.default_rng(0).integers(0, 255, (100, 80, 3), dtype=np.uint8)
    assert model.preprocess(face).shape == (3, size, size)
    probabilities = model.predict_proba([face, face[::-1]])
    assert probabilities.shape == (2, classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_backbone_weights_load_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    reference = timm.create_model("efficientnet_b0", num_classes=0)
    path = tmp_path / "efficientnet_b0.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = create_model("cnn-efficientnet-b0", pretrained=path)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)


def test_missing_weights_and_bad_class_count(tmp_path):
    with pytest.raises(UserError, match="backbone weights not found"):
        create_model("cnn-mobilenetv2", pretrained=tmp_path / "none.pth")
    with pytest.raises(UserError, match="num_classes must be 7 or 8"):
        create_model("cnn-mobilenetv2", num_classes=5)


@pytest.mark.parametrize("name", ["cnn-mobilenetv2", "rmfer-efficientnet-b2", "caption-clip-resnet50",
                                  "caption-clip-vit"])
def test_a_smaller_input_size_for_cheap_experiments(name):
    model = create_model(name, input_size=112)
    face = np.random.default_rng(0).integers(0, 255, (100, 80, 3), dtype=np.uint8)
    assert model.preprocess(face).shape == (3, 112, 112)
    assert model.predict_proba([face]).shape == (1, 7)
    with pytest.raises(UserError, match="at least 32"):
        create_model(name, input_size=16)


class RunsCode:
    """Unpickled, it would create the file `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("write, fragments", [
    (lambda path: save_file({"head.weight": torch.zeros(2, 2)}, str(path.with_suffix(".safetensors"))),
     ["is not a timm efficientnet_b0 ImageNet checkpoint", "309 of the backbone's 309 weights are not in it"]),
    (lambda path: torch.save({"state_dict": {"conv_stem.weight": torch.zeros(3, 3, 3, 3)}}, path),
     ["does not fit timm's efficientnet_b0", "size mismatch for conv_stem.weight"]),
    (lambda path: torch.save({"conv_stem.weight": RunsCode(path.with_name("marker"))}, path),
     ["holds pickled objects other than tensors, not loaded"]),
    (lambda path: path.write_text("not weights"), ["cannot read backbone weights"]),
], ids=["another-model", "wrong-shape", "pickle-that-runs-code", "not-weights"])
def test_a_weights_file_that_does_not_fit_is_refused_not_ignored(tmp_path, write, fragments):
    """timm skips the keys it does not know: a file of another model gave a random backbone without a word."""
    write(tmp_path / "weights.pth")
    path = next(tmp_path.glob("weights.*"))
    with pytest.raises(UserError) as refused:
        create_model("cnn-efficientnet-b0", pretrained=path)
    message = str(refused.value)
    assert "\n" not in message and all(fragment in message for fragment in fragments), message
    assert not (tmp_path / "marker").exists()  # the pickle's code did not run
