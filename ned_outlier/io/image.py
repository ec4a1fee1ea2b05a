"""Image files: which suffixes are images, reading them upright (EXIF orientation applied) and writing RGB images
atomically."""

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


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file, turned upright as its EXIF orientation says (a phone's portrait photo is
    stored sideways with a tag); UserError when it is not a readable image. Grey, palette and alpha images become
    RGB (alpha dropped)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"{path}: not a readable image ({reason})") from None


def write_image(path: str | Path, rgb: np.ndarray) -> Path:
    """RGB uint8 image (H, W, 3) to `path` (format from its suffix: .png, .jpg), parent folders made, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temp:
        if not cv2.imwrite(str(temp), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)):
            raise UserError(f"could not write {path}")
    return path


class PhotoWriter:
    """VideoWriter's interface for a photo: the one frame written is saved to `path` (format from its suffix,
    atomically) when the `with` block ends without an error; a second frame is a UserError."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._frame: np.ndarray | None = None

    def write(self, frame: np.ndarray) -> None:
        """frame: RGB uint8 (H, W, 3)."""
        if self._frame is not None:
            raise UserError(f"{self.path}: a photo holds one frame; write a video (.mp4) for more")
        self._frame = frame

    def __enter__(self) -> "PhotoWriter":
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is None and self._frame is not None:
            write_image(self.path, self._frame)
        return False
