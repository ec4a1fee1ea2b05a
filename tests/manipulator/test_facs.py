"""The facs manipulator's blend, checked against the formula on hand-computed cases."""

from pathlib import Path

import numpy as np
import pytest

from ned_outlier.errors import UserError
from ned_outlier.manipulator.facs import FacsConfig, FacsManipulator
from ned_outlier.pipeline import load_edit_config
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from tests.factories import face_params

_, SCHEMA = mediapipe_au_model()
E = SCHEMA.expression_names
M = SCHEMA.mouth_names


def manipulator(strength=2.0):
    config = FacsConfig(strength=strength, keep_from_source=("AU43",),
                        emotions={"happy": {"AU06": 1.0, "AU12": 0.5}, "surprised": {"AU01": 1.0, "AU26": 1.0}})
    return FacsManipulator(config, SCHEMA)


def source_params():
    expression = np.zeros((2, len(E)))
    expression[:, E.index("AU04")] = [0.8, 0.4]  # a frown to be removed
    expression[:, E.index("AU43")] = [0.0, 1.0]  # a blink to be kept
    mouth = np.zeros((2, len(M)))
    mouth[:, M.index("AU26")] = [0.3, 0.9]  # speech
    return face_params(expression, mouth)


def test_half_intensity_blend_by_hand():
    target = manipulator().to_emotion(source_params(), "happy", intensity=0.5)
    # AU06: 0.5 * 0 + 0.5 * (2.0 * 1.0) = 1.0; AU12: 0.5 * (2.0 * 0.5) = 0.5; AU04: 0.5 * 0.8 = 0.4, 0.5 * 0.4 = 0.2
    np.testing.assert_allclose(target.expression[:, E.index("AU06")], [1.0, 1.0])
    np.testing.assert_allclose(target.expression[:, E.index("AU12")], [0.5, 0.5])
    np.testing.assert_allclose(target.expression[:, E.index("AU04")], [0.4, 0.2])
    np.testing.assert_allclose(target.expression[:, E.index("AU43")], [0.0, 1.0])  # the blink is the source's
    np.testing.assert_allclose(target.mouth, source_params().mouth)  # --mouth keep


def test_intensity_zero_is_the_source_and_one_is_the_prototype():
    source = source_params()
    unchanged = manipulator().to_emotion(source, "surprised", intensity=0.0)
    np.testing.assert_allclose(unchanged.expression, source.expression)
    full = manipulator().to_emotion(source, "surprised", intensity=1.0)
    expected = np.zeros(len(E))
    expected[E.index("AU01")] = 2.0
    np.testing.assert_allclose(full.expression[0], expected)
    np.testing.assert_allclose(full.mouth[:, M.index("AU26")], [0.3, 0.9])  # speech wins over surprise's AU26


def test_mouth_edit_moves_the_jaw_to_the_prototype():
    target = manipulator().to_emotion(source_params(), "surprised", intensity=0.5, mouth="edit")
    np.testing.assert_allclose(target.mouth[:, M.index("AU26")], [0.5 * 0.3 + 0.5 * 2.0, 0.5 * 0.9 + 0.5 * 2.0])


def test_reference_style_is_the_median_of_its_codes():
    reference_expression = np.zeros((3, len(E)))
    reference_expression[:, E.index("AU15")] = [0.2, 1.0, 5.0]  # an outlier frame does not drag the median
    reference = face_params(reference_expression, np.zeros((3, len(M))))
    target = manipulator().to_reference(source_params(), reference, intensity=1.0)
    np.testing.assert_allclose(target.expression[:, E.index("AU15")], [1.0, 1.0])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, p: m.to_emotion(p, "bored"), "unknown emotion 'bored'; valid: happy, surprised"),
        (lambda m, p: m.to_emotion(p, "happy", intensity=1.5), "intensity must be in"),
        (lambda m, p: m.to_emotion(p, "happy", mouth="open"), "mouth must be one of"),
    ],
)
def test_bad_requests(call, message):
    with pytest.raises(UserError, match=message):
        call(manipulator(), source_params())


def test_config_with_an_au_the_schema_lacks():
    with pytest.raises(UserError, match="unknown AU 'AU18'"):
        FacsManipulator(FacsConfig(emotions={"pout": {"AU18": 1.0}}), SCHEMA)


def test_shipped_prototypes_follow_emfacs():
    """configs/edit/default.yaml holds the EMFACS prototypes the issue lists, every AU known to the schema."""
    config = load_edit_config(Path(__file__).resolve().parents[2] / "configs" / "edit" / "default.yaml")
    emotions = {name: set(weights) for name, weights in config.facs.emotions.items()}
    assert emotions["happy"] == {"AU06", "AU12"}
    # sad and angry: the EMFACS prototype plus AU17 (chin raiser) of its variants (sadness 1+4+15+17, anger 4+5+7+17+23)
    assert emotions["sad"] == {"AU01", "AU04", "AU15", "AU17"}
    assert emotions["surprised"] == {"AU01", "AU02", "AU05", "AU26"}
    assert {"AU01", "AU02", "AU04", "AU05", "AU07", "AU20"} <= emotions["fear"]
    assert emotions["angry"] == {"AU04", "AU05", "AU07", "AU17", "AU23"}
    assert {"AU09", "AU10", "AU15"} <= emotions["disgusted"]
    assert emotions["contempt"] == {"AU12", "AU14"}
    assert emotions["neutral"] == set()
    FacsManipulator(config.facs, SCHEMA)  # every AU exists
