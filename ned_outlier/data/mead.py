"""MEAD's video layout and the clip selection NED trains on.

    clips = scan_mead("/data/MEAD", MeadSelection(actors=("M003", "M009", "W029")))
    clips[0].actor, clips[0].emotion, clips[0].level, clips[0].path

MEAD stores <root>/<actor>/video/<view>/<emotion>/level_<n>/<id>.mp4 (view: front, down, left_30, ...; emotion: one of
angry, contempt, disgusted, fear, happy, neutral, sad, surprised; levels 1-3, neutral only level_1). NED uses the
front view, intensity level 3 of the seven emotions plus the neutral clips, and the actor split M003, M009, W029
(train) / M023 (val) of configs/ned/*.yaml.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ned_outlier.errors import UserError
from ned_outlier.labels import normalise_emotion

LOG = logging.getLogger(__name__)
LEVEL_FOLDER = re.compile(r"^level_(\d+)$")


@dataclass(frozen=True)
class MeadClip:
    """One MEAD video: `emotion` is the canonical name (ned_outlier.labels.EMOTIONS)."""

    actor: str
    view: str
    emotion: str
    level: int
    clip_id: str
    path: Path


@dataclass(frozen=True)
class MeadSelection:
    """Which clips to use: actors (empty: every actor folder), view, levels of the emotional clips, whether the
    neutral clips (MEAD has them at level 1 only) are included whatever `levels` says, and emotions (canonical names;
    empty: all eight; the clips of the others are counted and logged, e.g. MEAD's contempt for a 7-class scorer)."""

    actors: tuple[str, ...] = ()
    view: str = "front"
    levels: tuple[int, ...] = (3,)
    include_neutral: bool = True
    emotions: tuple[str, ...] = ()


def _actor_folders(root: Path, actors: tuple[str, ...]) -> list[Path]:
    if not root.is_dir():
        raise UserError(f"MEAD folder not found: {root} (expected <root>/<actor>/video/<view>/<emotion>/level_<n>/)")
    if not actors:
        return sorted(p for p in root.iterdir() if (p / "video").is_dir())
    missing = [actor for actor in actors if not (root / actor / "video").is_dir()]
    if missing:
        raise UserError(f"MEAD actors not found under {root}: {', '.join(missing)} (expected {root}/<actor>/video/)")
    return [root / actor for actor in actors]


def _wanted(emotion: str, level: int, selection: MeadSelection) -> bool:
    return level in selection.levels or (emotion == "neutral" and selection.include_neutral)


def scan_mead(root: str | Path, selection: MeadSelection | None = None) -> list[MeadClip]:
    """Every selected clip under `root`, sorted by actor, emotion, level, id; UserError when none matches."""
    selection = selection or MeadSelection()
    root = Path(root)
    clips, left_out = [], Counter()
    kept = {normalise_emotion(emotion) for emotion in selection.emotions}
    for actor in _actor_folders(root, selection.actors):
        for emotion_folder in sorted((actor / "video" / selection.view).glob("*")):
            emotion = normalise_emotion(emotion_folder.name)
            for level_folder in sorted(emotion_folder.iterdir()):
                match = LEVEL_FOLDER.match(level_folder.name)
                if match is None or not _wanted(emotion, int(match.group(1)), selection):
                    continue
                found = [MeadClip(actor.name, selection.view, emotion, int(match.group(1)), video.stem, video)
                         for video in sorted(level_folder.glob("*.mp4"))]
                if kept and emotion not in kept:
                    left_out[emotion] += len(found)
                else:
                    clips += found
    if left_out:
        LOG.warning("left out %s (not among the selected emotions %s)",
                    ", ".join(f"{n} {emotion} clips" for emotion, n in sorted(left_out.items())),
                    ", ".join(selection.emotions))
    if not clips:
        raise UserError(f"no MEAD clips under {root} for view {selection.view!r}, levels {list(selection.levels)}"
                        f"{', actors ' + ', '.join(selection.actors) if selection.actors else ''}")
    return clips


def window_starts(n_frames: int, length: int = 10, hop: int = 1) -> range:
    """Start frames of the `length`-frame windows of a clip of `n_frames`, `hop` apart (NED: 10 frames, hop 1);
    empty when the clip is shorter than one window."""
    if length < 1 or hop < 1:
        raise ValueError("window length and hop must be at least 1")
    return range(0, max(n_frames - length + 1, 0), hop)
