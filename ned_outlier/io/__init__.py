"""Streaming video reading and writing, and atomic output files."""

from ned_outlier.io.atomic import atomic_output, ensure_not_input
from ned_outlier.io.video import VideoInfo, VideoReader, VideoWriter

__all__ = ["VideoInfo", "VideoReader", "VideoWriter", "atomic_output", "ensure_not_input"]
