"""Model families; importing a module registers its models."""

from recognition.models import cnn, fer2013  # noqa: F401
