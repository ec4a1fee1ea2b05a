"""The synthetic emotion set on a tiny config (the astronaut + 2 frames of the Pexels clip, 2 emotions, 1 intensity):
layout, manifest, identity-disjoint split, byte-identical rebuild with the seed, readable by the dataset readers."""

import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from ned_outlier.errors import UserError
from recognition.data.readers import read_dataset
from recognition.data.synthetic import (build_emotion_set, contact_sheet, load_set_config, read_manifest,
                                        spread_frames, square_within)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from cli_checks import assert_one_line_error, load_script, run  # noqa: E402

TINY = {
    "seed": 3,
    "emotions": ["neutral", "joy"],  # a synonym: the folder is the canonical label
    "intensities": [1.0],
    "test_identities": ["astronaut"],
    "sources": {"pexels": {"media": "asset:pexels_video", "frames": 2}, "astronaut": {"media": "skimage:astronaut"}},
}


def write_config(folder: Path, **changes) -> Path:
    path = folder / "set.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(config path, set folder, summary) of the tiny set."""
    folder = tmp_path_factory.mktemp("synthetic")
    config = write_config(folder)
    out = folder / "set"
    return config, out, build_emotion_set(load_set_config(config), out, progress=False)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@pytest.mark.slow
def test_layout_and_manifest(built):
    _, out, summary = built
    rows = read_manifest(out)
    assert rows == summary.rows and summary.skipped == []
    frames = sorted({row.frame for row in rows if row.identity == "pexels"})
    assert len(frames) == 2
    expected = {f"test/{label}/astronaut_0000_1.00.png" for label in ("neutral", "happy")}
    expected |= {f"train/{label}/pexels_{frame:04d}_1.00.png" for label in ("neutral", "happy") for frame in frames}
    assert set(files(out)) == expected == {row.path for row in rows}
    for row in rows:
        assert row.path.split("/")[:2] == [row.split, row.label] and row.intensity == 1.0
        assert row.source == row.identity and (row.frame == 0) == (row.identity == "astronaut")
        assert cv2.imread(str(out / row.path)).shape == (256, 256, 3)


@pytest.mark.slow
def test_split_is_by_identity(built):
    _, _, summary = built
    assert summary.identities() == {"train": ["pexels"], "test": ["astronaut"]}
    assert summary.counts() == {"train": {"neutral": 2, "happy": 2}, "test": {"neutral": 1, "happy": 1}}


@pytest.mark.slow
def test_edits_differ_but_keep_the_crop(built):
    _, out, _ = built
    neutral, happy = (cv2.imread(str(out / "test" / label / "astronaut_0000_1.00.png")).astype(int)
                      for label in ("neutral", "happy"))
    difference = np.abs(neutral - happy).max(axis=2)
    assert difference.max() > 30  # the face moved
    assert difference[:16].max() == 0 and difference[:, :16].max() == 0  # the background did not (same square)


@pytest.mark.slow
def test_readers_read_the_set(built):
    _, out, _ = built
    train, test = read_dataset("folders", out / "train"), read_dataset("folders", out / "test")
    assert sorted(s.label for s in train) == ["happy", "happy", "neutral", "neutral"]
    assert sorted(s.label for s in test) == ["happy", "neutral"]
    assert test[0].image().shape == (256, 256, 3)


@pytest.mark.slow
def test_same_seed_same_bytes(built, tmp_path):
    config, out, _ = built
    again = build_emotion_set(load_set_config(config), tmp_path / "again", progress=False)
    assert files(tmp_path / "again") == files(out)
    assert (tmp_path / "again" / "manifest.csv").read_bytes() == (out / "manifest.csv").read_bytes()
    assert again.rows == read_manifest(out)


@pytest.mark.slow
def test_contact_sheet(built):
    _, out, summary = built
    sheet = contact_sheet(out, summary.rows, "pexels", ("neutral", "happy"), tile=64)
    assert sheet.shape == (2 * 64, 2 * 64, 3)
    with pytest.raises(UserError, match="nobody"):
        contact_sheet(out, summary.rows, "nobody", ("neutral",))


def test_frames_spread_over_the_clip():
    rng = np.random.default_rng(0)
    frames = spread_frames(np.arange(100), 4, rng)
    assert [f // 25 for f in frames] == [0, 1, 2, 3]
    assert spread_frames(np.array([5, 9]), 4, rng) == [5, 9]


def test_crop_square_stays_inside_the_picture():
    assert square_within(np.array([10.0, 10, 30, 30]), 0.5, (0, 0, 100, 100)).tolist() == [5, 5, 35, 35]
    assert square_within(np.array([0.0, 80, 20, 100]), 0.5, (0, 0, 100, 100)).tolist() == [0, 70, 30, 100]
    assert square_within(np.array([0.0, 0, 20, 20]), 0.5, (0, 0, 25, 25)).tolist() == [0, 0, 25, 25]


@pytest.mark.parametrize("changes, fragment", [
    ({"colour": 1}, "unknown key 'colour'"),
    ({"sources": {"x": {"media": "skimage:astronaut", "frame": 2}}}, "sources.x: unknown key 'frame'"),
    ({"emotions": ["neutral", "bored"]}, "unknown emotion 'bored'"),
    ({"intensities": [0.0]}, "intensities must be in (0, 1]"),
    ({"mouth": "open"}, "mouth must be one of"),
])  # fmt: skip
def test_bad_config_is_a_user_error(tmp_path, changes, fragment):
    with pytest.raises(UserError) as error:
        load_set_config(write_config(tmp_path, **changes))
    assert fragment in str(error.value)


def test_test_identities_are_names_or_patterns():
    from recognition.data.synthetic import is_test_identity

    patterns = ("astronaut", "lfw_07[6-9]", "lfw_09*")
    assert [is_test_identity(name, patterns) for name in ("astronaut", "lfw_077", "lfw_075", "lfw_093", "pexels")] \
        == [True, True, False, True, False]


def test_unknown_test_identity_and_missing_media(tmp_path):
    sources = {"astronaut": {"media": "skimage:astronaut"}}
    for pattern in ("nobody", "astro*x"):
        with pytest.raises(UserError, match=re.escape(f"test identity '{pattern}'")):
            build_emotion_set(load_set_config(write_config(tmp_path, sources=sources, test_identities=[pattern])),
                              tmp_path / "a", progress=False)
    with pytest.raises(UserError, match="source media not found"):
        build_emotion_set(load_set_config(write_config(tmp_path, sources={"x": {"media": str(tmp_path / "no.mp4")}})),
                          tmp_path / "b", progress=False)


def test_cli_one_line_errors(tmp_path, capfd):
    script = load_script("make_emotion_set")
    code, err = run(script, capfd, "--config", write_config(tmp_path, colour=1), "--out", tmp_path / "set")
    assert_one_line_error(code, err, "unknown key 'colour'")
    (tmp_path / "set" / "train").mkdir(parents=True)
    code, err = run(script, capfd, "--config", write_config(tmp_path), "--out", tmp_path / "set")
    assert_one_line_error(code, err, "already holds a set", "--overwrite")
