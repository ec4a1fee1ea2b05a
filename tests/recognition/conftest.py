"""Shared fixtures of the recognition tests."""

import cv2
import numpy as np
import pytest

COLOURS = {"happy": (220, 60, 40), "sad": (40, 60, 220), "neutral": (60, 200, 60)}


@pytest.fixture(scope="module")
def colour_faces(tmp_path_factory):
    """Class-per-folder train/ and val/ sets: noisy images whose mean colour gives the class (learnable fast)."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        for label, colour in COLOURS.items():
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                image = np.clip(np.array(colour) + rng.normal(0, 40, (40, 40, 3)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(root / split / label / f"{i}.png"), image)
    return root
