"""MEAD's folder layout: selection by actor, view, level, the neutral exception, and 10-frame windows."""

import pytest

from ned_outlier.data.mead import MeadSelection, scan_mead, window_starts
from ned_outlier.errors import UserError


@pytest.fixture
def mead(tmp_path):
    """A MEAD-shaped tree of empty .mp4 files: 2 actors, front + left_30, three levels, neutral at level 1."""
    for actor in ("M003", "W029"):
        for view in ("front", "left_30"):
            for emotion, levels in (("angry", (1, 2, 3)), ("happy", (1, 3)), ("neutral", (1,))):
                for level in levels:
                    folder = tmp_path / actor / "video" / view / emotion / f"level_{level}"
                    folder.mkdir(parents=True)
                    for clip in ("001", "002"):
                        (folder / f"{clip}.mp4").touch()
    (tmp_path / "README.txt").touch()  # stray files beside the actors are ignored
    return tmp_path


def test_default_selection_is_front_level_3_plus_neutral(mead):
    clips = scan_mead(mead)
    assert {(c.actor, c.emotion, c.level) for c in clips} == {
        (actor, emotion, level) for actor in ("M003", "W029")
        for emotion, level in (("angry", 3), ("happy", 3), ("neutral", 1))}
    assert len(clips) == 2 * 3 * 2 and {c.view for c in clips} == {"front"}
    assert clips[0].path == mead / "M003" / "video" / "front" / "angry" / "level_3" / "001.mp4"


def test_actor_view_and_level_choices(mead):
    clips = scan_mead(mead, MeadSelection(actors=("W029",), view="left_30", levels=(1, 2), include_neutral=False))
    assert {(c.actor, c.emotion, c.level) for c in clips} == {
        ("W029", "angry", 1), ("W029", "angry", 2), ("W029", "happy", 1), ("W029", "neutral", 1)}


def test_missing_root_actor_or_clips_are_user_errors(mead, tmp_path):
    with pytest.raises(UserError, match="MEAD folder not found"):
        scan_mead(tmp_path / "nowhere")
    with pytest.raises(UserError, match="actors not found.*M999"):
        scan_mead(mead, MeadSelection(actors=("M003", "M999")))
    with pytest.raises(UserError, match="no MEAD clips"):
        scan_mead(mead, MeadSelection(view="down"))


def test_windows_of_ten_frames_hop_one():
    assert list(window_starts(12)) == [0, 1, 2]
    assert list(window_starts(25, length=10, hop=5)) == [0, 5, 10, 15]
    assert list(window_starts(9)) == []


def test_an_emotion_filter_leaves_out_contempt_and_says_so(mead, caplog):
    for clip in ("001", "002", "003"):
        folder = mead / "M003" / "video" / "front" / "contempt" / "level_3"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{clip}.mp4").touch()
    assert "contempt" in {c.emotion for c in scan_mead(mead)}  # no filter: all eight
    clips = scan_mead(mead, MeadSelection(emotions=("neutral", "Anger", "happy")))  # synonyms are understood
    assert {c.emotion for c in clips} == {"angry", "happy", "neutral"} and len(clips) == 12
    assert "left out 3 contempt clips" in caplog.text
