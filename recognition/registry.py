"""A registry of emotion classifiers by name, in the manner of timm and open_clip.

    @register_model("fer2013-minixception")
    def fer2013_minixception(pretrained=None, **kwargs) -> nn.Module: ...

    model = create_model("fer2013-minixception")       # .labels, .preprocess, .predict_proba
    list_models("fer2013-*")                           # ["fer2013-minixception"]

A factory takes `pretrained` (a weights path or tag; None means the model's default) plus its own keyword
arguments, and returns a model with `.labels` (its output order, canonical names from recognition.labels),
`.preprocess(face_rgb_uint8)` and `predict_proba(images) -> np.ndarray (N, len(labels))`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from ned_outlier.errors import UserError
from recognition.checkpoint import checkpoint_metadata, load_trained_state

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
    """Sorted names of the registered models matching the fnmatch `pattern`."""
    return sorted(fnmatch.filter(_MODELS, pattern))


def create_model(name: str, pretrained: Any = None, **kwargs: Any) -> Any:
    """The model `name` built by its factory with `pretrained` and `kwargs`; UserError for an unknown name.

    When `pretrained` is a checkpoint of scripts/train_recognition.py (recognition.checkpoint), the model is built
    from the options stored in it (`kwargs` override them, e.g. clip_weights) and its trained weights are loaded;
    any other `pretrained` goes to the factory (a backbone's ImageNet weights, a pretrained tag, ...).
    """
    try:
        factory = _MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r} (available: {', '.join(list_models())})") from None
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
