"""Synthetic stand-ins for DECA's deca_model.tar and EMOCA's Lightning checkpoint: random weights under the real key
names and shapes, written out here from DECA's architecture (decalib/models/resnet.py, encoders.py) independently of
ned_outlier's modules, plus a functional forward pass of that architecture to check the modules against.

The released files cannot be fetched (licence), so the layout is reconstructed: ResNet-50 (blocks 3, 4, 6, 3; the
stride on each stage's first 3 x 3 convolution; a 1 x 1 convolution + BatchNorm `downsample` on each stage's first
block; no fc) under `encoder.`, the head Linear(2048, 1024), ReLU, Linear(1024, n) under `layers.0` / `layers.2`.
"""

from __future__ import annotations

import sys
import types
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))  # (planes, blocks); a block's output has 4 * planes channels
DECA_OUTPUTS = 236
EMOCA_OUTPUTS = 50


def regressor_shapes(n_outputs: int) -> OrderedDict[str, tuple[int, ...]]:
    """Key -> shape of a DECA ResnetEncoder state dict with n_outputs outputs, BatchNorm counters included."""
    shapes: OrderedDict[str, tuple[int, ...]] = OrderedDict()

    def conv(name: str, out: int, inp: int, kernel: int) -> None:
        shapes[f"encoder.{name}.weight"] = (out, inp, kernel, kernel)

    def norm(name: str, channels: int) -> None:
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"encoder.{name}.{field}"] = (channels,)
        shapes[f"encoder.{name}.num_batches_tracked"] = ()

    conv("conv1", 64, 3, 7)
    norm("bn1", 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(STAGES, start=1):
        for block in range(blocks):
            name = f"layer{stage}.{block}"
            conv(f"{name}.conv1", planes, inplanes, 1)
            norm(f"{name}.bn1", planes)
            conv(f"{name}.conv2", planes, planes, 3)
            norm(f"{name}.bn2", planes)
            conv(f"{name}.conv3", 4 * planes, planes, 1)
            norm(f"{name}.bn3", 4 * planes)
            if block == 0:
                conv(f"{name}.downsample.0", 4 * planes, inplanes, 1)
                norm(f"{name}.downsample.1", 4 * planes)
            inplanes = 4 * planes
    shapes["layers.0.weight"] = (1024, 2048)
    shapes["layers.0.bias"] = (1024,)
    shapes["layers.2.weight"] = (n_outputs, 1024)
    shapes["layers.2.bias"] = (n_outputs,)
    return shapes


def random_state(shapes: OrderedDict[str, tuple[int, ...]], seed: int) -> OrderedDict[str, torch.Tensor]:
    """Random tensors of those shapes, scaled so a forward pass stays finite and not constant."""
    generator = torch.Generator().manual_seed(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape in shapes.items():
        field = key.rsplit(".", 1)[1]
        if field == "num_batches_tracked":
            state[key] = torch.tensor(1000 + seed, dtype=torch.int64)
        elif len(shape) >= 2:  # convolution or linear weight, He-scaled
            fan_in = int(torch.tensor(shape[1:]).prod())
            state[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif field == "running_var":
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        elif field == "weight":
            state[key] = 0.3 + 0.5 * torch.rand(shape, generator=generator)
        else:  # bias, running_mean
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    return state


def fixed_codes(n_outputs: int, bias, seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """A regressor state dict with DECA's key names whose output is `bias` (n_outputs,) for every image (the last
    layer's weights zero)."""
    state = random_state(regressor_shapes(n_outputs), seed)
    state["layers.2.weight"] = torch.zeros_like(state["layers.2.weight"])
    state["layers.2.bias"] = torch.as_tensor(bias, dtype=torch.float32)
    return state


def small_dummy(seed: int) -> OrderedDict[str, torch.Tensor]:
    """A few tensors standing in for E_detail / D_detail, which the loaders ignore."""
    generator = torch.Generator().manual_seed(seed)
    return OrderedDict([("layers.2.weight", torch.randn(128, 8, generator=generator)),
                        ("layers.2.bias", torch.randn(128, generator=generator))])


def write_deca_checkpoint(path: Path, e_flame: OrderedDict[str, torch.Tensor]) -> Path:
    """deca_model.tar as DECA's model_dict() saves it: the three state dicts."""
    torch.save({"E_flame": e_flame, "E_detail": small_dummy(1), "D_detail": small_dummy(2)}, path)
    return path


@contextmanager
def importable(module_name: str, **attributes):
    """Make `module_name` (and its parents) importable with these attributes while pickling, then remove it."""
    parts = module_name.split(".")
    added = []
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        if name not in sys.modules:
            sys.modules[name] = types.ModuleType(name)
            added.append(name)
    for attribute, value in attributes.items():
        value.__module__ = module_name
        value.__qualname__ = attribute
        setattr(sys.modules[module_name], attribute, value)
    try:
        yield
    finally:
        for name in reversed(added):
            del sys.modules[name]


def write_emoca_checkpoint(path: Path, e_flame: OrderedDict[str, torch.Tensor] | None,
                           e_expression: OrderedDict[str, torch.Tensor]) -> Path:
    """An EMOCA checkpoint as PyTorch Lightning 1.4 writes it: the module's state dict under 'state_dict' (prefix
    'deca.'), callback states keyed by the callback's class, a foreign object besides (both pickled by name)."""
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for prefix, part in (("deca.E_flame.", e_flame or {}), ("deca.E_detail.", small_dummy(3)),
                         ("deca.E_expression.", e_expression), ("deca.D_detail.", small_dummy(4))):
        state.update((prefix + key, value) for key, value in part.items())
    state["deca.flame.faces_tensor"] = torch.zeros(4, 3, dtype=torch.int64)

    class ModelCheckpoint:  # stands for pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint
        pass

    class DictConfig:  # stands for omegaconf.dictconfig.DictConfig, an instance pickled with its state
        def __init__(self) -> None:
            self.content = {"n_exp": 50}

    with importable("pytorch_lightning.callbacks.model_checkpoint", ModelCheckpoint=ModelCheckpoint), \
            importable("omegaconf.dictconfig", DictConfig=DictConfig):
        torch.save({"epoch": 3, "global_step": 12345, "pytorch-lightning_version": "1.4.9", "state_dict": state,
                    "callbacks": {ModelCheckpoint: {"monitor": "val_loss/dataloader_idx_0",
                                                    "best_model_score": torch.tensor(9.44489288)}},
                    "hyper_parameters": DictConfig(), "optimizer_states": [], "lr_schedulers": []}, path)
    return path


def reference_forward(state: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """DECA's ResnetEncoder forward pass written with torch.nn.functional from a state dict: (B, n_outputs)."""

    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.batch_norm(x, state[f"encoder.{name}.running_mean"], state[f"encoder.{name}.running_var"],
                            state[f"encoder.{name}.weight"], state[f"encoder.{name}.bias"], False, 0.0, 1e-5)

    def conv(x: torch.Tensor, name: str, stride: int = 1, padding: int = 0) -> torch.Tensor:
        return F.conv2d(x, state[f"encoder.{name}.weight"], stride=stride, padding=padding)

    x = F.relu(norm(conv(images, "conv1", 2, 3), "bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for stage, (_, blocks) in enumerate(STAGES, start=1):
        for block in range(blocks):
            name = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            out = F.relu(norm(conv(x, f"{name}.conv1"), f"{name}.bn1"))
            out = F.relu(norm(conv(out, f"{name}.conv2", stride, 1), f"{name}.bn2"))
            out = norm(conv(out, f"{name}.conv3"), f"{name}.bn3")
            shortcut = norm(conv(x, f"{name}.downsample.0", stride), f"{name}.downsample.1") if block == 0 else x
            x = F.relu(out + shortcut)
    features = F.avg_pool2d(x, 7, 1).flatten(1)
    hidden = F.relu(F.linear(features, state["layers.0.weight"], state["layers.0.bias"]))
    return F.linear(hidden, state["layers.2.weight"], state["layers.2.bias"])
