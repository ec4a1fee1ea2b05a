"""Face sources: a stack's `first` and `limit` pick images by their index, and the identities keep that index (so
a set made from `first: 48` shares no identity with one made from `limit: 48`)."""

from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data

from ned_outlier.data.face_sources import SourceConfig, load_photos, photo_faces


def test_first_and_limit_pick_the_stacks_images_by_index():
    stack = skimage.data.lfw_subset()
    photos = load_photos(SourceConfig("skimage:lfw_subset", first=48, limit=3))
    assert len(photos) == 3 and photos[0].shape[2] == 3
    assert np.array_equal(photos[0], load_photos(SourceConfig("skimage:lfw_subset", limit=49))[48])
    assert len(load_photos(SourceConfig("skimage:lfw_subset", first=95))) == len(stack) - 95


def test_identities_keep_their_index_in_the_stack(tmp_path):
    no_face = SimpleNamespace(detect=lambda images: [SimpleNamespace(boxes=np.zeros((0, 4)))])
    skipped = []
    cut = SimpleNamespace(region_size=64, region_margin=1.0, min_photo_side=32)  # a PhotoCut
    photo_faces("lfw", SourceConfig("skimage:lfw_subset", first=48, limit=2), cut, no_face, tmp_path, skipped)
    assert [name for name, _ in skipped] == ["lfw_048", "lfw_049"]


def test_a_negative_first_is_refused():
    with pytest.raises(ValueError, match="first >= 0"):
        SourceConfig("skimage:lfw_subset", first=-1)
