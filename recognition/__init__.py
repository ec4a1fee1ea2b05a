"""Emotion classifiers behind one lazy registry: `create_model(name, pretrained=...)`, `list_models(pattern)`."""

from recognition.registry import create_model, list_models

__all__ = ["create_model", "list_models"]
