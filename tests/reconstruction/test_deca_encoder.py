"""DECA's E_flame and EMOCA's E_expression: the released state-dict layout key for key, the 236-vector's split."""

from __future__ import annotations

import pytest
import torch

from ned_outlier.reconstruction.deca.encoder import (
    DecaEncoder,
    EmocaEncoder,
    EmocaExpressionEncoder,
    ResNet50Trunk,
    split_deca_code,
)
from tests.reconstruction.deca_fixture import DECA_OUTPUTS, EMOCA_OUTPUTS, regressor_shapes

# A few keys of DECA's E_flame, written out by hand from decalib/models/resnet.py and encoders.py.
KNOWN_KEYS = {
    "encoder.conv1.weight": (64, 3, 7, 7),
    "encoder.bn1.running_mean": (64,),
    "encoder.layer1.0.conv1.weight": (64, 64, 1, 1),
    "encoder.layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "encoder.layer2.0.conv2.weight": (128, 128, 3, 3),
    "encoder.layer2.3.conv1.weight": (128, 512, 1, 1),
    "encoder.layer3.5.bn3.weight": (1024,),
    "encoder.layer4.0.downsample.1.running_var": (2048,),
    "encoder.layer4.2.conv3.weight": (2048, 512, 1, 1),
    "encoder.layer4.2.bn3.running_var": (2048,),
    "layers.0.weight": (1024, 2048),
    "layers.0.bias": (1024,),
    "layers.2.weight": (236, 1024),
    "layers.2.bias": (236,),
}
RESNET50_WITHOUT_FC = 25_557_032 - (2048 * 1000 + 1000)  # torchvision's resnet50 parameter count, less its fc


def shapes_of(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def constant_head(encoder: torch.nn.Module, offset: float) -> None:
    """The last layer outputs offset + arange(n) whatever the image: zero weights, that bias."""
    with torch.no_grad():
        encoder.layers[2].weight.zero_()
        encoder.layers[2].bias.copy_(offset + torch.arange(encoder.layers[2].bias.numel(), dtype=torch.float32))


def test_e_flame_state_dict_is_decas_key_for_key():
    shapes = shapes_of(DecaEncoder())
    for key, shape in KNOWN_KEYS.items():
        assert shapes[key] == shape, key
    assert shapes == dict(regressor_shapes(DECA_OUTPUTS))  # the whole layout, in the fixture's own writing
    assert not any(".fc." in key or key.startswith(("fc.", "encoder.fc")) for key in shapes)
    parameters = sum(p.numel() for p in DecaEncoder().parameters())
    assert parameters == RESNET50_WITHOUT_FC + (2048 * 1024 + 1024) + (1024 * 236 + 236)


def test_emoca_expression_encoder_is_the_same_layout_with_50_outputs():
    shapes = shapes_of(EmocaExpressionEncoder())
    assert shapes == dict(regressor_shapes(EMOCA_OUTPUTS))
    assert shapes["layers.2.weight"] == (50, 1024)


def test_the_236_vector_splits_in_decas_order():
    encoder = DecaEncoder().eval()
    constant_head(encoder, 0.0)
    with torch.no_grad():
        codes = encoder(torch.rand(2, 3, 224, 224))
    expected = {"shape": range(0, 100), "tex": range(100, 150), "exp": range(150, 200), "pose": range(200, 206),
                "cam": range(206, 209)}
    for name, values in expected.items():
        assert getattr(codes, name).tolist() == [list(map(float, values))] * 2, name
    assert codes.light.shape == (2, 9, 3)
    assert codes.light[1, 4, 2] == 209 + 4 * 3 + 2  # SH band 4, blue: bands major, RGB minor
    assert codes.light.reshape(2, 27).tolist() == [list(map(float, range(209, 236)))] * 2


def test_emoca_takes_expression_from_its_encoder_and_the_rest_with_the_jaw_from_decas():
    model = EmocaEncoder().eval()
    constant_head(model.flame_encoder, 0.0)
    constant_head(model.expression_encoder, 1000.0)
    with torch.no_grad():
        codes = model(torch.rand(1, 3, 224, 224))
    assert codes.exp.tolist() == [list(map(float, range(1000, 1050)))]
    assert codes.pose.tolist() == [list(map(float, range(200, 206)))]
    assert codes.shape[0, 0] == 0 and codes.cam[0, 0] == 206 and codes.light[0, 0, 0] == 209


def test_split_refuses_a_vector_of_the_wrong_size_and_the_trunk_refuses_other_image_sizes():
    with pytest.raises(ValueError, match="236"):
        split_deca_code(torch.zeros(1, 235))
    with pytest.raises(ValueError, match="224"):
        ResNet50Trunk()(torch.zeros(1, 3, 256, 256))
