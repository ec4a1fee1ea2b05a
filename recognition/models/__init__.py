"""Model families; importing a module registers its models."""

from recognition.models import caption_clip, clip_zero_shot, cnn, exp_clip, fer2013, rmfer  # noqa: F401
