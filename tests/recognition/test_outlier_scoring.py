"""Outlier scoring on a tiny MEAD-layout set of real clips: lambda per window and clip against hand-computed values
with a fixed-probability classifier, and the command line with the packaged FER2013 classifier."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ned_outlier.assets import asset_path
from ned_outlier.data.mead import MeadClip, scan_mead
from recognition.outlier_scoring import ClipScore, ScoringConfig, score_clips, write_scores
from ned_outlier.errors import UserError
from ned_outlier.face.finder import FaceFinder


LABELS = ("neutral", "happy", "sad")


class FixedClassifier:
    """Every face: p(neutral) 0.1, p(happy) 0.3, p(sad) 0.6."""

    labels = LABELS

    def predict_proba(self, crops):
        return np.tile(np.array([[0.1, 0.3, 0.6]], np.float32), (len(crops), 1))


@pytest.fixture(scope="module")
def scored(tiny_mead):
    config = ScoringConfig()
    return score_clips(scan_mead(tiny_mead, config.mead), FixedClassifier(), FaceFinder(), config), config


def test_lambda_per_window_and_clip_by_hand(scored, tiny_mead, tmp_path):
    scores, config = scored
    summary = write_scores(scores, tiny_mead, tmp_path, config, "fixed")
    windows = list(csv.DictReader(open(tmp_path / "windows.csv")))
    happy = [w for w in windows if w["emotion"] == "happy"]
    sad = [w for w in windows if w["emotion"] == "sad"]
    assert [int(w["start"]) for w in happy] == [0, 1, 2] and [int(w["start"]) for w in sad] == list(range(6))
    assert all(float(w["probability"]) == pytest.approx(0.3) and float(w["lambda"]) == pytest.approx(0.3)
               for w in happy)  # 0.3 < 0.6: lambda is the probability
    assert all(float(w["lambda"]) == 1.0 for w in sad)  # 0.6 >= 0.6: full weight
    clips = {row["emotion"]: row for row in csv.DictReader(open(tmp_path / "clips.csv"))}
    assert float(clips["happy"]["lambda"]) == pytest.approx(0.3) and float(clips["sad"]["lambda"]) == 1.0
    assert int(clips["neutral"]["face_frames"]) == 0 and clips["neutral"]["lambda"] == "nan"
    assert float(clips["happy"]["p_sad"]) == pytest.approx(0.6)
    assert summary["windows"] == 9 and summary["down_weighted_windows"] == pytest.approx(3 / 9)
    assert summary["per_class"]["happy"] == {"windows": 3, "down_weighted": 1.0, "mean_lambda": pytest.approx(0.3)}
    assert json.loads((tmp_path / "scores.json").read_text())["scorer"] == "fixed"
    assert sorted(p.name for p in tmp_path.glob("hist_*.png")) == ["hist_happy.png", "hist_sad.png"]


def test_a_window_needs_the_face_in_every_frame():
    probabilities = np.full((14, 3), 0.5, np.float32)
    probabilities[5] = np.nan  # no face in frame 5
    clip = MeadClip("A", "front", "sad", 3, "001", Path("001.mp4"))
    assert [start for start, _ in ClipScore(clip, LABELS, probabilities).windows(4, 1)] == [0, 1, 6, 7, 8, 9, 10]
    stepped = np.full((8, 3), np.nan, np.float32)
    stepped[[0, 2, 6]] = 0.5  # every 2nd frame scored; frame 4 had no face
    assert ClipScore(clip, LABELS, stepped, frame_step=2).found.tolist() == [True] * 4 + [False] * 2 + [True] * 2


def test_a_label_the_scorer_lacks_is_an_error(tiny_mead):
    class NoSad(FixedClassifier):
        labels = ("neutral", "happy", "angry")

    with pytest.raises(UserError, match="the scorer has no class sad"):
        score_clips(scan_mead(tiny_mead), NoSad(), FaceFinder(), ScoringConfig())


def test_a_corrupt_clip_stops_the_scoring_while_a_faceless_one_is_kept(tiny_mead, tmp_path, ffmpeg):
    config = ScoringConfig()
    faceless = [clip for clip in scan_mead(tiny_mead, config.mead) if clip.emotion == "neutral"]
    (scored,) = score_clips(faceless, FixedClassifier(), FaceFinder(), config)
    assert scored.probabilities.shape == (12, 3) and not scored.found.any()
    whole = ffmpeg(tmp_path / "whole.mp4", "-i", str(asset_path("pexels_video")), "-frames:v", "15", "-c:v",
                   "libx264", "-movflags", "+faststart")  # the index first: a cut file opens, then fails to decode
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.9)])
    with pytest.raises(UserError, match="broken.mp4: video is corrupt or truncated"):
        score_clips([MeadClip("M001", "front", "sad", 3, "009", broken)], FixedClassifier(), FaceFinder(), config)
