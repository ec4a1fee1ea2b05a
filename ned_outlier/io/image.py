"""Image files: which suffixes are images, and writing RGB images atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ned_outlier.errors import UserError
from ned_outlier.io.atomic import atomic_output

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def is_image(path: Path) -> bool:
    """Whether `path` names an image file by its suffix (IMAGE_SUFFIXES, any case)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def write_image(path: str | Path, rgb: np.ndarray) -> Path:
    """RGB uint8 image (H, W, 3) to `path` (format from its suffix: .png, .jpg), parent folders made, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temp:
        if not cv2.imwrite(str(temp), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)):
            raise UserError(f"could not write {path}")
    return path
