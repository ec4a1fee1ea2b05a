"""The `mediapipe-au` backend's code schema: which AUs are the mouth code, which the expression code."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ned_outlier.reconstruction.au_model import AUMeshModel, load_au_model
from ned_outlier.reconstruction.params import ParamSchema

BACKEND = "mediapipe-au"
# Speech moves the jaw (AU26), parts the lips (AU25) and presses them together for /p b m/ (AU24): the mouth code,
# kept from the source in an edit. The lip AUs that carry emotion (AU10, AU12, AU15, AU17, AU20, AU23 ...) stay in
# the expression code; each of them is re-parameterised to leave the inner-lip gap unchanged
# (`AUMeshModel.holding_lip_gap`), which is what makes keeping these three keep the mouth opening.
MOUTH_AUS = ("AU24", "AU25", "AU26")


@lru_cache(maxsize=1)
def mediapipe_au_model() -> tuple[AUMeshModel, ParamSchema]:
    """The AU model in the mouth-holding parameterisation, and the schema of the codes it produces."""
    model = load_au_model().holding_lip_gap(MOUTH_AUS)
    schema = ParamSchema(
        backend=BACKEND,
        expression_names=tuple(n for n in model.au_names if n not in MOUTH_AUS),
        mouth_names=tuple(n for n in model.au_names if n in MOUTH_AUS),
        n_vertices=model.mean.shape[0],
    )
    return model, schema


def codes_to_aus(expression: np.ndarray, mouth: np.ndarray, schema: ParamSchema, au_names: tuple[str, ...]) -> np.ndarray:
    """expression (T, E) and mouth (T, M) codes -> (T, 20) AU intensities in the model's order."""
    by_name = dict(zip(schema.expression_names, np.moveaxis(expression, -1, 0)))
    by_name.update(zip(schema.mouth_names, np.moveaxis(mouth, -1, 0)))
    return np.stack([by_name[name] for name in au_names], axis=-1)
