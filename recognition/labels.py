"""The one emotion vocabulary of the project, its synonyms, and the class orders of pretrained classifiers.

    normalise_emotion("Joy")        # "happy"
    FER2013_LABELS                  # fer's output order in canonical names
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

FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013's class order (its label indices 0-6), in the dataset's own names."""


def normalise_emotion(name: str) -> str:
    """The canonical name (one of EMOTIONS) of `name` or a synonym of it, case-insensitive; UserError otherwise."""
    try:
        return _SYNONYMS[name.strip().lower()]
    except (KeyError, AttributeError):
        raise UserError(
            f"unknown emotion {name!r}: use one of {', '.join(EMOTIONS)} (synonyms such as joy, anger work)"
        ) from None


FER2013_LABELS = tuple(normalise_emotion(name) for name in FER2013_CLASSES)
"""FER2013's class order in canonical names: angry, disgusted, fear, happy, sad, surprised, neutral."""
