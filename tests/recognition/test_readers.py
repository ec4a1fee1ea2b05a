"""Each dataset reader on a tiny dataset in its own layout, made here; label orders checked by hand."""

import cv2
import numpy as np
import pytest

from ned_outlier.errors import UserError
from recognition.data.readers import read_dataset


def write_image(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8, 3), value, np.uint8))
    return path


def test_fer2013_csv(tmp_path):
    pixels = " ".join(["7"] * 48 * 48)
    (tmp_path / "fer2013.csv").write_text(f"emotion,pixels,Usage\n3,{pixels},Training\n6,{pixels},PrivateTest\n")
    samples = read_dataset("fer2013", tmp_path)
    assert [(s.label, s.split) for s in samples] == [("happy", "Training"), ("neutral", "PrivateTest")]
    assert samples[0].image().shape == (48, 48, 3) and samples[0].image().max() == 7


def test_ferplus_majority_vote_and_skips(tmp_path):
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    rows = [
        "Training,fer0000000.png,0,0,1,0,8,1,0,0,0,0",  # anger wins
        "Training,fer0000001.png,0,0,0,0,0,0,0,0,1,9",  # not a face: skipped
        "PublicTest,fer0000002.png,2,7,1,0,0,0,0,0,0,0",  # happiness wins
        "Training,,10,0,0,0,0,0,0,0,0,0",  # FERPlus leaves names empty for dropped images
    ]
    (tmp_path / "fer2013new.csv").write_text("\n".join([header, *rows]) + "\n")
    samples = read_dataset("ferplus", tmp_path)
    assert [(s.label, s.path.relative_to(tmp_path).as_posix()) for s in samples] == [
        ("angry", "FER2013Train/fer0000000.png"), ("happy", "FER2013Valid/fer0000002.png")]


def test_rafdb_labels_one_to_seven(tmp_path):
    listing = tmp_path / "EmoLabel" / "list_patition_label.txt"
    listing.parent.mkdir()
    listing.write_text("train_00001.jpg 1\ntrain_00002.jpg 4\ntest_0001.jpg 7\n")
    write_image(tmp_path / "Image" / "aligned" / "train_00001_aligned.jpg", 50)
    samples = read_dataset("rafdb", tmp_path)
    assert [(s.label, s.split) for s in samples] == [("surprised", "train"), ("happy", "train"), ("neutral", "test")]
    assert samples[0].image().shape == (8, 8, 3)


def test_affectnet_skips_none_uncertain_noface(tmp_path):
    lists = tmp_path / "Manually_Annotated_file_lists"
    lists.mkdir()
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
    (lists / "training.csv").write_text(f"{header}\n1/a.jpg,0,0,8,8,,7,0,0\n1/b.jpg,0,0,8,8,,8,0,0\n")
    (lists / "validation.csv").write_text(f"{header}\n2/c.jpg,0,0,8,8,,6,0,0\n2/d.jpg,0,0,8,8,,10,0,0\n")
    samples = read_dataset("affectnet", tmp_path)
    assert [(s.label, s.split) for s in samples] == [("contempt", "training"), ("angry", "validation")]


def test_caer_s_and_class_folders(tmp_path):
    for split in ("train", "test"):
        write_image(tmp_path / split / "Anger" / "0001.png", 10)
        write_image(tmp_path / split / "Happy" / "0002.png", 20)
    samples = read_dataset("caer-s", tmp_path)
    assert sorted((s.split, s.label) for s in samples) == [("test", "angry"), ("test", "happy"),
                                                           ("train", "angry"), ("train", "happy")]
    write_image(tmp_path / "mine" / "joy" / "x.jpg", 30)
    assert [s.label for s in read_dataset("folders", tmp_path / "mine")] == ["happy"]
    write_image(tmp_path / "bad" / "bored" / "x.jpg", 30)
    with pytest.raises(UserError, match="unknown emotion 'bored'"):
        read_dataset("folders", tmp_path / "bad")


def test_missing_files_and_unknown_layout(tmp_path):
    with pytest.raises(UserError, match="RAF-DB label list not found"):
        read_dataset("rafdb", tmp_path)
    with pytest.raises(UserError, match="unknown dataset layout 'kdef'"):
        read_dataset("kdef", tmp_path)
