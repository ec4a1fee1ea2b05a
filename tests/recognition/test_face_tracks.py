"""RMFER face tracks: extraction from a real group photo made into a panning video, the pair candidates against the
loss's own definition, the anchor/positive/negative batches, and an RMFER run whose ACL stage uses them."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ned_outlier.assets import asset_path
from ned_outlier.errors import UserError
from recognition.data.face_tracks import (ACLBatchSampler, FaceTrackDataset, TrackCrops, extract_face_tracks,
                                          load_face_track_config, read_face_tracks)
from recognition.losses import ACLGroups, acl_candidates, check_acl_groups
from recognition.models.rmfer import RMFER
from recognition.training.config import load_training_config
from recognition.training.trainer import train

REPO = Path(__file__).resolve().parents[2]
FRAMES = 45


@pytest.fixture(scope="module")
def group_video(tmp_path_factory, ffmpeg):
    """The five-person group photo as a 45-frame video panning 2 px a frame (10 fps)."""
    return ffmpeg(tmp_path_factory.mktemp("group") / "group.mp4", "-loop", "1", "-i",
                  str(asset_path("multi_face_image")), "-vf", "crop=900:600:'n*2':30,format=yuv420p",
                  "-frames:v", str(FRAMES), "-r", "10", "-c:v", "libx264")


@pytest.fixture(scope="module")
def tracks(group_video, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracks")
    extract_face_tracks(group_video, out, load_face_track_config(REPO / "configs/recognition/face_tracks.yaml"))
    return out


def make_crops(rows):
    """TrackCrops without images from (video, person, frame) rows."""
    video, person, frame = (np.array(column, np.int64) for column in zip(*rows))
    return TrackCrops(("a", "b"), tuple(REPO / f"{i}.png" for i in range(len(rows))), video, person, frame)


def test_every_person_every_frame(tracks):
    crops = read_face_tracks(tracks)
    assert crops.videos == ("group",)
    assert sorted(set(crops.person.tolist())) == [0, 1, 2, 3, 4]
    for person in range(5):
        assert sorted(crops.frame[crops.person == person].tolist()) == list(range(FRAMES))
    image = cv2.imread(str(crops.paths[0]))
    assert image.shape == (260, 260, 3)
    last = [cv2.imread(str(tracks / "group" / str(p) / "000040.png")).astype(float) for p in range(5)]
    assert min(np.abs(a - b).mean() for i, a in enumerate(last) for b in last[i + 1:]) > 10  # five different faces
    assert not list(tracks.glob(".*partial*"))


def test_a_finished_video_is_not_extracted_again(tracks, group_video):
    index = tracks / "group" / "tracks.csv"
    before = os.stat(index).st_mtime_ns
    extract_face_tracks(group_video, tracks)
    assert os.stat(index).st_mtime_ns == before


def test_no_tracks_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="face-track folder not found"):
        read_face_tracks(tmp_path / "missing")
    with pytest.raises(UserError, match="holds no face tracks"):
        read_face_tracks(tmp_path)
    with pytest.raises(UserError, match="no face tracked"):
        extract_face_tracks(asset_path("no_face_video"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_dataset_items(tracks):
    crops = read_face_tracks(tracks)
    dataset = FaceTrackDataset(crops, lambda image: torch.from_numpy(image).permute(2, 0, 1))
    image, video, person, frame = dataset[7]
    assert image.shape == (3, 260, 260) and (video, person, frame) == (0, crops.person[7], crops.frame[7])


def test_candidates_are_the_losses_pairs():
    rng = np.random.default_rng(0)
    rows = [(int(v), int(p), int(f)) for v, p, f in zip(rng.integers(0, 2, 300), rng.integers(0, 3, 300),
                                                        rng.integers(0, 80, 300))]
    crops = make_crops(rows)
    sampler = ACLBatchSampler(crops, 5, positive_window=5, negative_gap=30, seed=0, positives=2, negatives=2)
    tensor = lambda a: torch.from_numpy(a)  # noqa: E731
    positive, negative = acl_candidates(tensor(crops.video), tensor(crops.person), tensor(crops.frame), 5, 30)
    for i in range(300):
        assert sorted(sampler.pairs.positives(i).tolist()) == torch.nonzero(positive[i]).flatten().tolist()
        assert sorted(sampler.pairs.negatives(i).tolist()) == torch.nonzero(negative[i]).flatten().tolist()
    eligible = (positive.any(dim=1) & negative.any(dim=1)).nonzero().flatten().tolist()
    assert sampler.anchors.tolist() == eligible


def test_batches_are_anchor_groups_and_repeat_per_seed_and_epoch():
    rows = [(0, person, frame) for person in range(3) for frame in range(60)]
    crops = make_crops(rows)
    sampler = ACLBatchSampler(crops, 12, positive_window=5, negative_gap=30, seed=1, positives=2, negatives=3)
    batches = list(sampler)
    assert len(batches) == 180 // 12 and all(len(batch) == 12 for batch in batches)  # two groups of 1 + 2 + 3
    layout = sampler.layout
    assert layout.anchor.tolist() == [0, 6] and layout.positive.tolist() == [[1, 2], [7, 8]]
    assert layout.negative.tolist() == [[3, 4, 5], [9, 10, 11]]
    fields = [torch.from_numpy(column) for column in (crops.video, crops.person, crops.frame)]
    for batch in batches:
        for anchor, *rest in (batch[:6], batch[6:]):
            positives, negatives = rest[:2], rest[2:]
            for i in positives:
                assert crops.person[i] != crops.person[anchor] and abs(crops.frame[i] - crops.frame[anchor]) <= 5
            for i in negatives:
                assert crops.person[i] == crops.person[anchor] and abs(crops.frame[i] - crops.frame[anchor]) > 30
        check_acl_groups(layout, *(column[batch] for column in fields), positive_window=5, negative_gap=30)
    assert list(sampler) != batches  # a second pass draws afresh
    sampler.set_epoch(0)
    assert list(sampler) == batches  # the same epoch and pass: the same batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_every_batch_holds_exactly_its_groups():
    # 110 crops leave room for one group of 1 + 50 + 50 only: the batch, and the batch size accelerate's sharding
    # compares with, are 101
    crops = make_crops([(0, person, frame) for person in range(3) for frame in range(100)])
    sampler = ACLBatchSampler(crops, 110, positive_window=5, negative_gap=30, seed=0)
    assert sampler.batch_size == 101 and all(len(batch) == 101 for batch in sampler)
    assert sampler.layout.anchor.tolist() == [0]


def test_sampler_errors():
    alone = make_crops([(0, 0, frame) for frame in range(60)])  # one person: no positive anywhere
    with pytest.raises(UserError, match="ACL needs videos with several people"):
        ACLBatchSampler(alone, 101, 5, 30, seed=0)
    with pytest.raises(UserError, match="needs at least 101"):
        ACLBatchSampler(alone, 32, 5, 30, seed=0)


@pytest.mark.slow
def test_rmfer_acl_stage_trains_on_the_tracks(tmp_path, tracks, colour_faces, monkeypatch):
    seen = []

    def recording(self, images, video, person, frame, **options):
        loss = original(self, images, video, person, frame, **options)
        seen.append((images.shape, video.tolist(), person.tolist(), frame.tolist(), loss.item(), options["groups"]))
        return loss

    original = RMFER.acl_loss
    monkeypatch.setattr(RMFER, "acl_loss", recording)
    config = tmp_path / "rmfer.yaml"
    config.write_text(f"""
model: {{name: rmfer-efficientnet-b2, options: {{num_classes: 7}}}}
data: {{train: {{root: {colour_faces / 'train'}}}, face_tracks: {tracks}}}
optim: {{name: adam, lr: 1.0e-3}}
acl: {{start_epoch: 1, batch_size: 10, positives: 2, negatives: 2}}
train: {{output_dir: {tmp_path / 'run'}, epochs: 2, batch_size: 12, seed: 3}}
""")
    result = train(load_training_config(config))
    assert np.isfinite(result.history).all()
    assert len(seen) == 2  # 24 training images in batches of 12: two steps, and ACL only in the second epoch
    for shape, video, person, frame, loss, groups in seen:
        assert shape == (10, 3, 260, 260) and loss > 0  # two anchors, each with 2 positives and 2 negatives
        expected = ACLGroups.consecutive(2, 2, 2)  # the trainer hands the loss the sampler's layout
        assert all(torch.equal(getattr(groups, part).cpu(), getattr(expected, part))
                   for part in ("anchor", "positive", "negative"))
        for anchor in (0, 5):
            gap = {i: abs(frame[i] - frame[anchor]) for i in range(anchor + 1, anchor + 5)}
            assert all(person[i] != person[anchor] and gap[i] <= 5 for i in (anchor + 1, anchor + 2))
            assert all(person[i] == person[anchor] and gap[i] > 30 for i in (anchor + 3, anchor + 4))
