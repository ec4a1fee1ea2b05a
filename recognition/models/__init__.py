"""Model families; importing a module registers its models."""

from recognition.models import caption_clip, cnn, exp_clip, fer2013, rmfer  # noqa: F401
