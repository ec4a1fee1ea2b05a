"""`facs`: the training-free manipulator. Target AUs from EMFACS emotion prototypes, blended by intensity.

    target_expression = (1 - intensity) * source_expression + intensity * prototype

per expression AU (AUs in `keep_from_source` stay the source's). The mouth code is the source's with `mouth="keep"`
(talking video: the jaw and lip closure follow the speech), or blended toward the prototype like the expression with
`mouth="edit"` (silent clips: a surprised jaw drop, say). Where a prototype asks for a mouth AU (surprise's AU26)
and the mouth is kept, the speech wins: the source's jaw opening is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.params import FaceParams, ParamSchema

MOUTH_MODES = ("keep", "edit")


@dataclass(frozen=True)
class FacsConfig:
    """strength: intensity of a prototype AU of weight 1. keep_from_source: AUs never edited (blinks).
    emotions: canonical emotion name -> {AU name: weight}."""

    strength: float = 1.5
    keep_from_source: tuple[str, ...] = ("AU43",)
    emotions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TargetCodes:
    """expression (T, E) and mouth (T, M) target codes, NaN where the source has no face."""

    expression: np.ndarray
    mouth: np.ndarray


def blend_codes(source: TargetCodes, goal_expression: np.ndarray, goal_mouth: np.ndarray, intensity: float,
                mouth: str, keep: np.ndarray) -> TargetCodes:
    """Move source codes (T, E) / (T, M) toward constant goals (E,) / (M,) by `intensity`; `keep` (E,) bool marks
    expression dims that stay the source's."""
    if not 0.0 <= intensity <= 1.0:
        raise UserError(f"intensity must be in [0, 1], got {intensity}")
    if mouth not in MOUTH_MODES:
        raise UserError(f"mouth must be one of {', '.join(MOUTH_MODES)}, got {mouth!r}")
    expression = (1.0 - intensity) * source.expression + intensity * goal_expression
    expression[:, keep] = source.expression[:, keep]
    target_mouth = source.mouth.copy()
    if mouth == "edit":
        target_mouth = (1.0 - intensity) * source.mouth + intensity * goal_mouth
    return TargetCodes(expression.astype(np.float32), target_mouth.astype(np.float32))


class FacsManipulator:
    """Prototype-driven edits of codes of one schema (AU names must be in it)."""

    def __init__(self, config: FacsConfig, schema: ParamSchema):
        self.config = config
        self.schema = schema
        known = set(schema.expression_names) | set(schema.mouth_names)
        for name, weights in {"keep_from_source": dict.fromkeys(config.keep_from_source, 0), **config.emotions}.items():
            unknown = sorted(set(weights) - known)
            if unknown:
                raise UserError(f"facs config, {name}: unknown AU {unknown[0]!r} (the {schema.backend} codes have "
                                f"{', '.join(sorted(known))})")
        self.keep = np.array([n in config.keep_from_source for n in schema.expression_names])

    @property
    def emotions(self) -> tuple[str, ...]:
        return tuple(self.config.emotions)

    def prototype(self, emotion: str) -> tuple[np.ndarray, np.ndarray]:
        """(E,) expression and (M,) mouth goal codes of `emotion` (a canonical name)."""
        if emotion not in self.config.emotions:
            raise UserError(f"unknown emotion {emotion!r}; valid: {', '.join(self.emotions)}")
        weights = self.config.emotions[emotion]
        goal = lambda names: np.array([self.config.strength * weights.get(n, 0.0) for n in names])  # noqa: E731
        return goal(self.schema.expression_names), goal(self.schema.mouth_names)

    def to_emotion(self, params: FaceParams, emotion: str, intensity: float = 1.0, mouth: str = "keep") -> TargetCodes:
        self.schema.require_same(params.schema, "the facs manipulator config")
        expression, mouth_goal = self.prototype(emotion)
        return blend_codes(TargetCodes(params.expression, params.mouth), expression, mouth_goal, intensity, mouth,
                           self.keep)

    def to_reference(self, params: FaceParams, reference: FaceParams, intensity: float = 1.0,
                     mouth: str = "keep") -> TargetCodes:
        """Transfer the reference clip's expression style: the median over its face frames of its codes, which are
        already relative to the reference subject's own neutral face (see reconstruction/identity.py)."""
        params.schema.require_same(reference.schema, "the reference clip's reconstruction")
        found = reference.face_found
        goal_expression = np.median(reference.expression[found], axis=0)
        goal_mouth = np.median(reference.mouth[found], axis=0)
        return blend_codes(TargetCodes(params.expression, params.mouth), goal_expression, goal_mouth, intensity,
                           mouth, self.keep)
