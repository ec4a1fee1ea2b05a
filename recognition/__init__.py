"""Emotion classifiers behind one registry: `create_model(name, pretrained=...)`, `list_models(pattern)`."""

from recognition.registry import create_model, list_models
from recognition import models  # noqa: F401  (registers the model families)

__all__ = ["create_model", "list_models"]
