"""A registry of emotion classifiers by name, in the manner of timm and open_clip.

    @register_model("fer2013-minixception")
    def fer2013_minixception(pretrained=None, **kwargs) -> nn.Module: ...

    model = create_model("fer2013-minixception")       # .labels, .preprocess, .predict_proba
    list_models("fer2013-*")                           # ["fer2013-minixception"]

A factory takes `pretrained` (a weights path or tag; None means the model's default) plus its own keyword
arguments, and returns a model with `.labels` (its output order, canonical names from recognition.labels),
`.preprocess(face_rgb_uint8)` and `predict_proba(images) -> np.ndarray (N, len(labels))`.

The registry is lazy: `FAMILIES` names the module of every model, so listing the models imports nothing, and
creating one imports only its family's module (which registers it; open_clip, timm or transformers come with the
families that need them).
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from typing import Any

from ned_outlier.errors import UserError

_FAMILY_MODELS = {
    "recognition.models.caption_clip": ("caption-clip-resnet50", "caption-clip-vit"),
    "recognition.models.clip_zero_shot": ("clip-zero-shot",),
    "recognition.models.cnn": ("cnn-efficientnet-b0", "cnn-efficientnet-b2", "cnn-mobilenetv2"),
    "recognition.models.exp_clip": ("exp-clip-vit-b-16", "exp-clip-vit-b-32", "exp-clip-vit-l-14"),
    "recognition.models.fer2013": ("fer2013-minixception",),
    "recognition.models.rmfer": ("rmfer-efficientnet-b2",),
}
FAMILIES: dict[str, str] = {name: module for module, names in _FAMILY_MODELS.items() for name in names}
"""Model name -> the module that registers it (a test checks this against what the modules register)."""

_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a model factory under `name` (each name once)."""

    def register(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = factory
        return factory

    return register


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the models (FAMILIES' and any registered since) matching the fnmatch `pattern`; imports
    nothing."""
    return sorted(fnmatch.filter(set(FAMILIES) | set(_MODELS), pattern))


def _factory(name: str) -> Callable[..., Any]:
    """The factory of `name`, importing its family's module the first time; UserError for an unknown name."""
    if name not in _MODELS and name in FAMILIES:
        importlib.import_module(FAMILIES[name])
    try:
        return _MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r} (available: {', '.join(list_models())})") from None


def create_model(name: str, pretrained: Any = None, **kwargs: Any) -> Any:
    """The model `name` built by its factory with `pretrained` and `kwargs`; UserError for an unknown name.

    When `pretrained` is a checkpoint of scripts/train_recognition.py (recognition.checkpoint), the model is built
    from the options stored in it (`kwargs` override them, e.g. clip_weights) and its trained weights are loaded;
    a checkpoint of another of this project's trainers (a NED manipulator, a renderer) is a UserError; any other
    `pretrained` goes to the factory (a backbone's ImageNet weights, a pretrained tag, ...).
    """
    from recognition.checkpoint import checkpoint_metadata, load_trained_state, other_project_checkpoint

    factory = _factory(name)
    other = other_project_checkpoint(pretrained) if pretrained is not None else None
    if other is not None:
        raise UserError(f"{pretrained} is {other}, not weights of a classifier: give a checkpoint of "
                        f"train_recognition.py or {name}'s own weights file")
    trained = checkpoint_metadata(pretrained) if pretrained is not None else None
    if trained is None:
        return factory(pretrained=pretrained, **kwargs)
    if trained["model"] != name:
        raise UserError(f"{pretrained} is a {trained['model']} checkpoint, not {name}")
    try:
        model = factory(pretrained=None, **{**trained["options"], **kwargs})
    except TypeError as error:
        raise UserError(f"{pretrained}: its options do not fit {name}: {error}") from None
    return load_trained_state(model, pretrained, trained["labels"])
