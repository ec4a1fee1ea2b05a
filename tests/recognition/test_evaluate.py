"""recognition.evaluate on ten real frames, the astronaut and hand-made folders: one record per frame, exact target
rates, WAR/UAR against hand-computed values, and an edit compared with a hand-made source."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from ned_outlier.assets import asset_path
from ned_outlier.errors import UserError
from ned_outlier.face.finder import FaceFinder, lip_opening, mesh_box
from recognition import create_model
from recognition import evaluate as evaluation
from recognition.evaluate import (Evaluation, Record, classification_metrics, compare_to_source, evaluate,
                                  format_summary, pearson, read_labels, summarise, write_outputs)
from recognition.identity import FaceEmbedder

LABELS = ("happy", "sad", "neutral")
ONE_HOT = {label: np.eye(len(LABELS), dtype=np.float32)[i] for i, label in enumerate(LABELS)}


class CyclingClassifier:
    """A fake classifier: the n-th crop it sees gets the one-hot probabilities of tops[n % len(tops)]."""

    labels = LABELS

    def __init__(self, tops: list[str]) -> None:
        self.tops, self.seen, self.batches = tops, 0, []

    def predict_proba(self, crops) -> np.ndarray:
        assert all(crop.ndim == 3 and crop.dtype == np.uint8 and crop.size for crop in crops)
        rows = [ONE_HOT[self.tops[(self.seen + i) % len(self.tops)]] for i in range(len(crops))]
        self.seen += len(crops)
        self.batches.append(len(crops))
        return np.stack(rows)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, ffmpeg):
    """The first 10 frames of the Pexels clip (her face in every frame)."""
    return ffmpeg(tmp_path_factory.mktemp("clip") / "ten.mp4", "-i", str(asset_path("pexels_video")),
                  "-frames:v", "10", "-c:v", "libx264")


@pytest.fixture(scope="module")
def faces():
    return FaceFinder()


@pytest.fixture(scope="module")
def fer():
    return create_model("fer2013-minixception")


@pytest.fixture(scope="module")
def with_identity(clip, fer, faces):
    return evaluate(clip, fer, faces, embedder=FaceEmbedder())


def write_image(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[:, :, ::-1])
    return path


def test_one_record_per_frame_with_probabilities_summing_to_one(with_identity, fer, tmp_path):
    assert with_identity.frame_count == 10
    assert [r.frame for r in with_identity.records] == list(range(10))
    for record in with_identity.records:
        assert record.has_face and record.probabilities.sum() == pytest.approx(1, abs=1e-5)
        x0, y0, x1, y1 = record.box
        assert x1 - x0 == pytest.approx(y1 - y0) and 200 < x1 - x0 < 400  # square around her face, inside 640x360
        assert 0 <= record.lip_opening < 0.5
        assert record.face_points.shape == (468, 2)
        assert (record.face_points >= record.box[:2]).all() and (record.face_points <= record.box[2:]).all()
    assert [r.frame for r in with_identity.records if r.embedding is not None] == [0, 4, 8]
    write_outputs(tmp_path, with_identity.records, fer.labels, summarise(with_identity.records, fer.labels))
    rows = list(csv.DictReader(open(tmp_path / "frames.csv")))
    assert [int(row["frame"]) for row in rows] == list(range(10))
    for row in rows:
        probabilities = [float(row[label]) for label in fer.labels]
        assert sum(probabilities) == pytest.approx(1, abs=1e-5)
        assert row["predicted"] == fer.labels[int(np.argmax(probabilities))]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.csv", "summary.json"]  # no labels: no confusion


def test_target_rate_counts_and_means_are_exact(clip, faces, monkeypatch):
    monkeypatch.setattr(evaluation, "BATCH_SIZE", 4)
    classifier = CyclingClassifier(["happy", "happy", "sad"])
    records = evaluate(clip, classifier, faces).records  # tops: h h s h h s h h s h
    assert classifier.batches == [4, 4, 2]
    summary = summarise(records, LABELS, target="happy")
    assert (summary["frames"], summary["with_face"]) == (10, 10)
    assert summary["top_class_counts"] == {"happy": 7, "sad": 3, "neutral": 0}
    assert summary["mean_probabilities"] == pytest.approx({"happy": 0.7, "sad": 0.3, "neutral": 0.0})
    assert summary["max_probabilities"] == pytest.approx({"happy": 1.0, "sad": 1.0, "neutral": 0.0})
    assert summary["target_rate"] == pytest.approx(0.7)
    assert summarise(records, LABELS, target="sad")["target_rate"] == pytest.approx(0.3)


def test_frame_step_and_max_frames(clip, faces):
    stepped = evaluate(clip, CyclingClassifier(["sad"]), faces, step=3)
    assert [r.frame for r in stepped.records] == [0, 3, 6, 9] and stepped.frame_count == 10
    cut = evaluate(clip, CyclingClassifier(["sad"]), faces, step=3, max_frames=2)
    assert [r.frame for r in cut.records] == [0, 3] and cut.frame_count == 6


def test_folder_labels_give_hand_computed_war_and_uar(tmp_path):
    for name in ("happy/a.png", "happy/b.png", "happy/c.png", "sadness/d.png", "sadness/e.png"):
        write_image(tmp_path / name, np.full((20, 20, 3), 128, np.uint8))
    classifier = CyclingClassifier(["happy", "sad", "happy", "sad", "sad"])
    records = evaluate(tmp_path, classifier, faces=None).records  # whole images
    assert [r.truth for r in records] == ["happy"] * 3 + ["sad"] * 2
    metrics = summarise(records, LABELS)["metrics"]
    assert metrics["confusion"] == [[2, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert metrics["war"] == pytest.approx(4 / 5)
    assert metrics["uar"] == pytest.approx((2 / 3 + 1) / 2)  # neutral has no sample: left out
    assert metrics["per_class_recall"] == {"happy": pytest.approx(2 / 3), "sad": 1.0, "neutral": None}
    (tmp_path / "out").mkdir()
    written = write_outputs(tmp_path / "out", records, LABELS, summarise(records, LABELS))
    assert [p.name for p in written] == ["frames.csv", "summary.json", "confusion.png"]
    assert written[2].read_bytes()[:4] == b"\x89PNG"


def test_a_true_class_the_model_lacks_counts_as_missed():
    metrics = classification_metrics(["happy", "contempt"], ["happy", "happy"], LABELS)
    assert metrics["classes"] == [*LABELS, "contempt"]
    assert metrics["war"] == 0.5 and metrics["uar"] == 0.5
    assert metrics["per_class_recall"]["contempt"] == 0.0


def test_labels_file(tmp_path):
    (tmp_path / "labels.csv").write_text("path,label\nfaces/a.png,Joy\n\n/abs/b.png,anger\n")
    assert read_labels(tmp_path / "labels.csv") == {(tmp_path / "faces" / "a.png").resolve(): "happy",
                                                     (tmp_path / "/abs/b.png").resolve(): "angry"}
    (tmp_path / "bad.csv").write_text("a.png,happy\nb.png,bored\n")
    with pytest.raises(UserError, match=r"bad.csv line 2: unknown emotion 'bored'"):
        read_labels(tmp_path / "bad.csv")
    (tmp_path / "short.csv").write_text("a.png\n")
    with pytest.raises(UserError, match="line 1: expected `path,label`"):
        read_labels(tmp_path / "short.csv")
    with pytest.raises(UserError, match="labels file not found"):
        read_labels(tmp_path / "absent.csv")


def test_labels_file_labels_a_flat_folder(tmp_path):
    write_image(tmp_path / "faces" / "a.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "faces" / "b.png", np.zeros((8, 8, 3), np.uint8))
    labels = {(tmp_path / "faces" / "b.png").resolve(): "sad"}
    records = evaluate(tmp_path / "faces", CyclingClassifier(["sad"]), None, labels).records
    assert [r.truth for r in records] == [None, "sad"]
    assert summarise(records, LABELS)["metrics"]["labelled"] == 1


def test_an_image_without_a_face_is_recorded_but_an_input_without_any_is_an_error(tmp_path, fer, faces):
    write_image(tmp_path / "mixed" / "astronaut.png", astronaut())
    blank = write_image(tmp_path / "mixed" / "blank.png", np.full((120, 160, 3), 200, np.uint8))
    records = evaluate(tmp_path / "mixed", fer, faces).records
    assert [r.has_face for r in records] == [True, False]
    assert fer.labels[int(np.argmax(records[0].probabilities))] == "happy"  # she smiles
    with pytest.raises(UserError, match="blank.png: no face found in any of its 1 images"):
        evaluate(blank, fer, faces)
    with pytest.raises(UserError, match="no such file or folder"):
        evaluate(tmp_path / "absent.mp4", fer, faces)


def hand_evaluation(name, lips, embeddings):
    """An Evaluation of len(lips) frames with the given lip openings (NaN: no mesh) and {frame: embedding}."""
    records = [Record(name, frame, lip_opening=lip, embedding=embeddings.get(frame)) for frame, lip in enumerate(lips)]
    return Evaluation(Path(name), records, len(lips))


def unit(index, length=1.0):
    """A 128-d embedding `length` along axis `index`."""
    vector = np.zeros(128, np.float32)
    vector[index] = length
    return vector


@pytest.fixture
def edit_and_source():
    """Four frames. Embeddings: the edit's frames 0 and 2 are 5 and 1 away from the source's (frame 3 is embedded in
    the source only); lip openings 0.1 0.2 0.3 against 0.1 0.3 0.2, the edit's frame 3 without a mesh."""
    edit = hand_evaluation("edit.mp4", [0.1, 0.2, 0.3, np.nan], {0: unit(0, 3.0), 2: unit(1)})
    source = hand_evaluation("source.mp4", [0.1, 0.3, 0.2, 0.4], {0: unit(1, 4.0), 2: unit(1, 2.0), 3: unit(3)})
    return edit, source


def test_an_edit_against_its_source_by_hand(edit_and_source):
    edit, source = edit_and_source
    comparison = compare_to_source(edit, source)
    # distances |(3, 0) - (0, 4)| = 5 and |e1 - 2 e1| = 1, averaged over the 2 frames embedded in both
    assert comparison["source"] == "source.mp4"
    assert comparison["identity_frames"] == 2 and comparison["identity_distance"] == pytest.approx(3.0)
    # centred 0.1 0.2 0.3 -> (-1, 0, 1) / 10, 0.1 0.3 0.2 -> (-1, 1, 0) / 10: r = 1 / (sqrt 2 sqrt 2) = 0.5
    assert comparison["mouth_frames"] == 3 and comparison["mouth_r"] == pytest.approx(0.5)
    itself = compare_to_source(edit, edit)  # the limit: the same video twice
    assert (itself["identity_distance"], itself["mouth_r"]) == (0.0, pytest.approx(1.0))


def test_a_source_of_another_length_is_refused(edit_and_source):
    edit, _ = edit_and_source
    shorter = hand_evaluation("short.mp4", [0.1, 0.2, 0.3], {})
    with pytest.raises(UserError, match="edit.mp4 has 4 frames but short.mp4 has 3"):
        compare_to_source(edit, shorter)
    unmeasured = compare_to_source(edit, hand_evaluation("flat.mp4", [0.2] * 4, {}))  # still lips, no embedding
    assert (unmeasured["identity_distance"], unmeasured["identity_frames"], unmeasured["mouth_r"]) == (None, 0, None)


def test_the_face_points_are_the_468_face_points_of_the_mesh():
    landmarks = np.zeros((478, 3), np.float32)
    landmarks[:, :2] = np.random.default_rng(0).uniform(10, 90, (478, 2))
    landmarks[:, 2] = 7.0
    record = Record("image.png", 0)
    evaluation._measure(record, np.zeros((120, 120, 3), np.uint8), landmarks, evaluation._Batches(CyclingClassifier(
        ["happy"])))
    assert np.array_equal(record.face_points, landmarks[:468, :2])  # no iris points, no depth


def test_a_video_against_itself_has_the_source_sharpness_and_no_jumps(with_identity):
    itself = compare_to_source(with_identity, with_identity, pixels=True)  # real meshes: 468 points a frame
    assert itself["sharpness_ratio"] == 1.0 and itself["pops"] == 0 and itself["max_jump"] == 0.0
    assert itself["pops_compensated"] == 0 and itself["max_jump_compensated"] == 0.0


def smooth_frames(count, size=160, seed=0):
    """`count` frames of a smooth texture panning 1 px a frame (easy on the codec), values 60..200."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(60, 200, (size, size)), (0, 0), 3.0)
    base = (60 + (base - base.min()) / np.ptp(base) * 140).astype(np.uint8)
    return [np.repeat(np.roll(base, t, axis=1)[..., None], 3, axis=2) for t in range(count)]


def test_pixel_measures_of_an_edit_against_its_source(tmp_path):
    """A copy of a six-frame clip with frame 3 ten grey levels brighter: frames 3 and 4 pop, the rest do not; the
    source's frame 1 has no mesh, so neither it nor frame 2 (after a frame without a face) jumps."""
    from ned_outlier.io.video import VideoWriter

    frames = smooth_frames(6)
    edited = [frame.copy() for frame in frames]
    edited[3] = edited[3] + np.uint8(10)
    for name, video in (("source.mp4", frames), ("edit.mp4", edited)):
        with VideoWriter(tmp_path / name, 25, 160, 160) as writer:
            for frame in video:
                writer.write(frame)
    square = np.array([[30, 30], [129, 30], [129, 129], [30, 129]], np.float32)
    records = [Record("source.mp4", t, face_points=None if t == 1 else square + [t, 0]) for t in range(6)]
    source = Evaluation(tmp_path / "source.mp4", records, 6)
    edit = Evaluation(tmp_path / "edit.mp4", [Record("edit.mp4", t) for t in range(6)], 6)
    compared = compare_to_source(edit, source, pixels=True)
    assert (compared["pops"], compared["pop_frames"]) == (2, [3, 4])
    assert compared["pop_frames_compensated"] == [3, 4]
    assert 7 < compared["max_jump"] < 13  # 10, give or take the codec
    assert compared["sharpness_ratio"] == pytest.approx(1, abs=0.05)
    assert "sharpness_ratio" not in compare_to_source(edit, source)  # only when asked: it decodes both again
    every_other = Evaluation(source.input, records[::2], 6)  # as with --frame-step 2: no consecutive frames
    assert compare_to_source(edit, every_other, pixels=True)["pops"] is None


def test_summary_table(with_identity, fer, edit_and_source):
    summary = {"model": "fer", **summarise(with_identity.records, fer.labels, target="sad")}
    summary["source"] = compare_to_source(*edit_and_source)
    table = format_summary(summary)
    assert "fer: 10 frames/images, 10 with a face" in table
    assert f"target rate (sad): {summary['target_rate']:.3f}" in table
    assert "vs source.mp4: identity distance 3.000 (2 frames), mouth r 0.500 (3 frames)" in table
    summary["source"] = compare_to_source(edit_and_source[0], hand_evaluation("flat.mp4", [0.2] * 4, {}))
    assert "identity distance - (0 frames), mouth r - (3 frames)" in format_summary(summary)
    summary["source"] |= {"sharpness_ratio": 0.9512, "pop_threshold": 4.0, "pops": 3, "max_jump": 6.31,
                          "pops_compensated": None, "max_jump_compensated": None}
    assert ("sharpness ratio 0.951, pops (jumps > 4 grey levels) 3 (max jump 6.3), face motion compensated - "
            "(max -)") in format_summary(summary)


def test_mesh_box_and_lip_opening_by_hand():
    landmarks = np.zeros((478, 3))
    landmarks[:468, :2] = [10, 20]
    landmarks[0, :2], landmarks[477, :2] = [0, 0], [99, 99]  # an iris point: not part of the box
    np.testing.assert_allclose(mesh_box(landmarks), [-7, -2, 17, 22])  # side 20 * 1.2, centred on (5, 10)
    mesh = np.zeros((478, 3))
    mesh[14] = [0.0, 9.0, 0.0]  # one inner-lip pair (13, 14) 9 apart, the other 8 closed: mean opening 1
    mesh[263] = [4.0, 0.0, 3.0]  # outer eye corners 33 (at 0) and 263: 5 apart, in 3D
    assert lip_opening(mesh) == pytest.approx(1 / 5)  # in inter-ocular distances
    assert lip_opening(3 * mesh) == pytest.approx(1 / 5)


def test_pearson_is_undefined_for_constant_or_short_series():
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 7.0])) == pytest.approx(0.9933, abs=1e-4)
    assert pearson(np.ones(3), np.arange(3.0)) is None
    assert pearson(np.ones(1), np.ones(1)) is None
