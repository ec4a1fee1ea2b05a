"""Real face media from installed packages, decoded with PyAV, and one shared MTCNN detector."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

import av
import numpy as np
import pytest

from ned_outlier.assets import asset_path
from ned_outlier.face.detector import FaceDetector


def decode(asset: str, limit: int | None = None) -> list[np.ndarray]:
    """The first `limit` frames (all when None) of packaged video `asset` as RGB uint8 arrays (H, W, 3)."""
    with av.open(str(asset_path(asset))) as container:
        return [frame.to_ndarray(format="rgb24") for frame in islice(container.decode(video=0), limit)]


@pytest.fixture
def video_frames() -> Callable[[str, int | None], list[np.ndarray]]:
    """`video_frames(asset, limit=None)`: the decoded frames of a packaged video."""
    return decode


@pytest.fixture(scope="session")
def detector() -> FaceDetector:
    return FaceDetector()
