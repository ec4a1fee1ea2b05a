"""SynthMEAD: the envelope and speech signals, outlier planning and ground truth by hand, and a small real build."""

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ned_outlier.data.mead import scan_mead
from ned_outlier.data.synthmead import (ClipTruth, MotionConfig, SynthConfig, animate, build_synthmead, envelope,
                                        plan_clips, read_truth, speech, twin_path, TWINS)
from ned_outlier.io.video import VideoReader
from ned_outlier.manipulator.facs import FacsManipulator
from ned_outlier.pipeline import load_edit_config
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model

SOURCES = {"astronaut": {"media": "skimage:astronaut"}}


def test_envelope_by_hand():
    np.testing.assert_allclose(envelope(10, ramp=2, neutral=3), [0, 0, 0, 0.5, 1, 1, 0.5, 0, 0, 0])
    np.testing.assert_allclose(envelope(6, ramp=1, neutral=0), [1, 1, 1, 1, 1, 1])


def test_speech_is_syllables_at_the_configured_rate():
    motion = MotionConfig(frames=250, fps=25)  # 10 s
    jaw, press = speech(250, 25, motion, np.random.default_rng(0))
    assert jaw.min() >= 0 and press.min() >= 0 and jaw.max() <= motion.jaw[1]
    peaks = np.flatnonzero((jaw[1:-1] > jaw[:-2]) & (jaw[1:-1] >= jaw[2:]) & (jaw[1:-1] > 0.1))
    assert 10 * 3 * 0.6 <= len(peaks) <= 10 * 5  # 3-5 syllables a second, some of them lip presses
    again, _ = speech(250, 25, motion, np.random.default_rng(0))
    np.testing.assert_array_equal(jaw, again)


def test_planned_outlier_fractions_and_labels():
    config = SynthConfig(sources=SOURCES, outliers={"onset_offset": 0.2, "ambiguous": 0.1, "wrong_label": 0.1})
    plans = plan_clips(config, identities=300, rng=np.random.default_rng(1))
    emotional = [p for p in plans if p.label != "neutral"]
    assert all(p.kind == "clean" for p in plans if p.label == "neutral")
    for kind, fraction in config.outliers.items():
        assert abs(np.mean([p.kind == kind for p in emotional]) - fraction) < 0.03
    assert all(p.rendered != p.label and p.rendered != "neutral" for p in emotional if p.kind == "wrong_label")
    assert all(p.intensity <= 0.25 for p in emotional if p.kind == "ambiguous")
    assert all(p.neutral == 14 for p in emotional if p.kind == "onset_offset")  # 35 % of 40 frames


def test_window_truth_by_hand():
    clip = ClipTruth("p", "S001", "happy", "happy", 1.0, "onset_offset", 40, onset_end=15, offset_start=25)
    assert clip.window_is_outlier(0, 10) and clip.window_is_outlier(30, 10)
    assert not clip.window_is_outlier(12, 10)  # 7 of 10 frames expressive
    assert clip.window_is_outlier(9, 10)  # 4 of 10
    assert replace(clip, kind="ambiguous").window_is_outlier(12, 10)
    assert not replace(clip, label="neutral").window_is_outlier(0, 10)


def test_animation_codes():
    _, schema = mediapipe_au_model()
    manipulator = FacsManipulator(load_edit_config().facs, schema)

    class Still:  # the one-frame codes animate() reads
        pass

    still = Still()
    still.schema = schema
    still.expression = np.full((1, len(schema.expression_names)), 0.2, np.float32)
    still.mouth = np.zeros((1, len(schema.mouth_names)), np.float32)
    weight = np.array([0.0, 0.5, 1.0])
    jaw = np.array([0.0, 0.3, 0.0])
    codes = animate(still, manipulator, "happy", 1.0, weight, jaw, np.zeros(3))
    goal, goal_mouth = manipulator.prototype("happy")
    np.testing.assert_allclose(codes.expression[0], still.expression[0])
    expected = np.where(manipulator.keep, 0.2, goal)
    np.testing.assert_allclose(codes.expression[2], expected, rtol=1e-6)
    np.testing.assert_allclose(codes.expression[1], (0.2 + expected) / 2, rtol=1e-6)
    jaw_index = schema.mouth_names.index("AU26")
    assert codes.mouth[1, jaw_index] == pytest.approx(0.3 + 0.5 * goal_mouth[jaw_index])


@pytest.mark.slow
def test_a_small_build_is_mead_shaped_with_its_truth(tmp_path):
    sources = SOURCES | {"coins": {"media": "skimage:coins"}}  # a photo without a face: left out, and counted
    config = SynthConfig(sources=sources, emotions=("neutral", "happy", "surprised"), clips_per_emotion=2,
                         motion=MotionConfig(frames=20), outliers={"ambiguous": 0.5})
    built = build_synthmead(config, tmp_path, progress=False)
    truths = built.truths
    assert built.skipped == [("coins", "no face detected")]
    clips = scan_mead(tmp_path)
    assert len(clips) == len(truths) == 6 and {c.actor for c in clips} == {"S001"}
    assert [t.path for t in read_truth(tmp_path)] == [t.path for t in truths]
    frames = {t.path: np.stack(list(VideoReader(tmp_path / t.path))).astype(float) for t in truths}
    assert all(len(f) == 20 for f in frames.values())
    neutral = frames[next(t.path for t in truths if t.label == "neutral")]
    upper_face_change = {(t.label, t.kind): np.abs(frames[t.path][10, :120] - neutral[10, :120]).mean()
                         for t in truths}  # mid-clip brows and eyes against the neutral clip (no mouth)
    # Surprise acts on brows and lids; happy (AU6 + AU12) changes rows 0-119 about as much as speech does between two
    # neutral clips (0.86 against 0.65 measured), so only surprise can show the clean/ambiguous contrast there.
    assert {("surprised", "clean"), ("surprised", "ambiguous")} <= set(upper_face_change)  # seed 0 draws both
    assert upper_face_change["surprised", "clean"] > 2 * upper_face_change["surprised", "ambiguous"]
    with open(tmp_path / "truth.csv") as handle:
        assert next(csv.reader(handle))[:3] == ["path", "actor", "label"]


def test_twins_keep_identity_and_speech_and_show_the_other_emotion(tmp_path):
    config = SynthConfig(sources=SOURCES, emotions=("neutral", "happy", "surprised"), motion=MotionConfig(frames=24),
                         outliers={}, twins=("S001",))
    truths = build_synthmead(config, tmp_path, progress=False).truths
    assert len(scan_mead(tmp_path)) == 3  # the twins are not clips of the set
    twins = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / TWINS).rglob("*.mp4"))
    assert twins == sorted(twin_path(Path(), t.path, e).as_posix() for t in truths for e in config.emotions
                           if e != t.label)
    video = {t.label: np.stack(list(VideoReader(tmp_path / t.path))).astype(float) for t in truths}
    twin = np.stack(list(VideoReader(twin_path(tmp_path, truths[0].path, "surprised")))).astype(float)  # neutral's
    upper = lambda frames: frames[12, :120]  # noqa: E731  (brows and eyes, mid-clip)
    assert np.abs(upper(twin) - upper(video["surprised"])).mean() < 0.5 * np.abs(
        upper(twin) - upper(video["neutral"])).mean()
    # the mouth's motion between the onset and offset ramps (which move the whole face of an emotional clip)
    motion = lambda frames: np.abs(np.diff(frames[5:19, 150:, 80:176], axis=0)).mean(axis=(1, 2, 3))  # noqa: E731
    speech_r = np.corrcoef(motion(twin), motion(video["neutral"]))[0, 1]
    other_r = np.corrcoef(motion(twin), motion(video["happy"]))[0, 1]
    assert speech_r > 0.95 and other_r < 0.5, (speech_r, other_r)  # measured 0.996 and -0.30
