"""dlib's identity embedding on real faces: one woman in two frames is the same person, the astronaut is not her."""

from __future__ import annotations

from itertools import islice

import av
import numpy as np
import pytest
from skimage.data import astronaut

from ned_outlier.assets import asset_path
from ned_outlier.errors import UserError
from recognition.identity import SAME_PERSON_THRESHOLD, FaceEmbedder, identity_distance

# Face boxes x0, y0, x1, y1 found with MTCNN (ned_outlier.face.detector): eyes down at frame 0, hand at the mouth
# at frame 200.
PEXELS_BOXES = {0: (322, 54, 535, 344), 200: (329, 32, 542, 334)}
ASTRONAUT_BOX = (183, 62, 268, 175)


@pytest.fixture(scope="module")
def embeddings() -> dict[str, np.ndarray]:
    embedder = FaceEmbedder()
    out = {"astronaut": embedder.embed(astronaut(), ASTRONAUT_BOX)}
    with av.open(str(asset_path("pexels_video"))) as container:
        for index, frame in enumerate(islice(container.decode(video=0), max(PEXELS_BOXES) + 1)):
            if index in PEXELS_BOXES:
                out[f"pexels {index}"] = embedder.embed(frame.to_ndarray(format="rgb24"), PEXELS_BOXES[index])
    return out


def test_embeddings_are_128_d(embeddings):
    for embedding in embeddings.values():
        assert embedding.shape == (128,) and embedding.dtype == np.float32 and np.isfinite(embedding).all()


def test_the_same_woman_in_two_frames_is_the_same_person(embeddings):
    assert identity_distance(embeddings["pexels 0"], embeddings["pexels 200"]) < SAME_PERSON_THRESHOLD


def test_the_astronaut_is_not_the_pexels_woman(embeddings):
    for frame in PEXELS_BOXES:
        assert identity_distance(embeddings["astronaut"], embeddings[f"pexels {frame}"]) > SAME_PERSON_THRESHOLD


def test_distance_is_euclidean():
    assert identity_distance(np.zeros(128), np.full(128, 0.5)) == pytest.approx(np.sqrt(128) / 2)


def test_a_missing_model_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="face-recognition-models"):
        FaceEmbedder(embedding=tmp_path / "absent.dat")
    with pytest.raises(UserError, match="5-point"):
        FaceEmbedder(landmarks=tmp_path / "absent.dat")
