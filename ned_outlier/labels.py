"""The one emotion vocabulary of the project and its synonyms (the class orders of classifiers and datasets are
in recognition.labels).

    normalise_emotion("Joy")        # "happy"
    EMOTIONS                        # the canonical names, in the project's order
"""

from __future__ import annotations

from ned_outlier.errors import UserError

EMOTIONS = ("neutral", "happy", "sad", "surprised", "fear", "disgusted", "angry", "contempt")

_SYNONYMS = {
    "neutral": "neutral", "calm": "neutral",
    "happy": "happy", "happiness": "happy", "joy": "happy", "joyful": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprised", "surprised": "surprised",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "disgust": "disgusted", "disgusted": "disgusted",
    "anger": "angry", "angry": "angry", "mad": "angry",
    "contempt": "contempt", "contemptuous": "contempt",
}  # fmt: skip


def normalise_emotion(name: str) -> str:
    """The canonical name (one of EMOTIONS) of `name` or a synonym of it, case-insensitive; UserError otherwise."""
    try:
        return _SYNONYMS[name.strip().lower()]
    except (KeyError, AttributeError):
        raise UserError(
            f"unknown emotion {name!r}: use one of {', '.join(EMOTIONS)} (synonyms such as joy, anger work)"
        ) from None
