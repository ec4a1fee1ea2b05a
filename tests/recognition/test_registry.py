"""The model registry and the emotion vocabulary."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

import recognition
from ned_outlier.errors import UserError
from recognition import registry
from recognition.labels import (
    AFFECTNET_ORDER,
    EMOTIONS,
    EXPCLIP_ORDER,
    FER2013_LABELS,
    RAFDB_ORDER,
    normalise_emotion,
    reorder,
)


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as it is, restored after the test."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))


def test_listing_names_every_family_without_importing_it():
    assert recognition.list_models("fer2013-*") == ["fer2013-minixception"]
    assert recognition.list_models("cnn-*") == ["cnn-efficientnet-b0", "cnn-efficientnet-b2", "cnn-mobilenetv2"]
    assert recognition.list_models("no-such-*") == []


def test_the_family_table_is_what_the_modules_register():
    for module in set(registry.FAMILIES.values()):
        importlib.import_module(module)
    registered = {name: factory.__module__ for name, factory in registry._MODELS.items()}
    assert registered == registry.FAMILIES


def test_listing_imports_no_model_library_and_creating_imports_only_its_family():
    code = ("import sys, recognition; names = recognition.list_models(); "
            "heavy = lambda: sorted({m.split('.')[0] for m in sys.modules} & {'open_clip', 'timm', 'transformers'}); "
            "print(len(names), heavy()); recognition.create_model('fer2013-minixception'); print(heavy(), "
            "sorted(m for m in sys.modules if m.startswith('recognition.models.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listed, created = done.stdout.splitlines()
    assert listed == f"{len(registry.FAMILIES)} []"
    assert created == "[] ['recognition.models.base', 'recognition.models.fer2013']"


def test_create_model_passes_pretrained_and_kwargs_to_the_factory(scratch_registry):
    @registry.register_model("toy-b")
    @registry.register_model("toy-a")
    def toy(pretrained=None, width=1):
        return pretrained, width

    assert recognition.create_model("toy-a", pretrained="weights.pt", width=3) == ("weights.pt", 3)
    assert recognition.create_model("toy-b") == (None, 1)
    assert recognition.list_models("toy-*") == ["toy-a", "toy-b"]


def test_a_name_registers_once(scratch_registry):
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model("fer2013-minixception")(lambda pretrained=None: None)


def test_an_unknown_model_is_a_user_error_listing_the_available_ones():
    with pytest.raises(UserError, match="unknown model 'nope' .*fer2013-minixception"):
        recognition.create_model("nope")


@pytest.mark.parametrize(
    "name, canonical",
    [("Happy", "happy"), ("JOY", "happy"), ("joyful", "happy"), ("happiness", "happy"), ("sadness", "sad"),
     ("surprise", "surprised"), ("afraid", "fear"), ("scared", "fear"), ("fearful", "fear"), ("disgust", "disgusted"),
     ("anger", "angry"), ("mad", "angry"), ("contemptuous", "contempt"), ("calm", "neutral"), (" neutral ", "neutral")],
)  # fmt: skip
def test_synonyms_normalise_to_the_canonical_names(name, canonical):
    assert normalise_emotion(name) == canonical


def test_every_canonical_name_is_its_own_normal_form():
    assert tuple(map(normalise_emotion, EMOTIONS)) == EMOTIONS


def test_an_unknown_emotion_is_a_user_error_listing_the_valid_names():
    with pytest.raises(UserError, match="'bored'.*neutral, happy, sad, surprised, fear, disgusted, angry, contempt"):
        normalise_emotion("bored")


def test_fer2013_order_in_canonical_names():
    assert FER2013_LABELS == ("angry", "disgusted", "fear", "happy", "sad", "surprised", "neutral")
    assert set(FER2013_LABELS) <= set(EMOTIONS)


def test_dataset_and_paper_orders_map_onto_each_other():
    assert set(RAFDB_ORDER) == set(FER2013_LABELS) and set(AFFECTNET_ORDER) == set(EXPCLIP_ORDER) == set(EMOTIONS)
    expclip_probs = np.array([[0.5, 0.1, 0.2, 0.05, 0.05, 0.04, 0.03, 0.03]])  # happiness first in Exp-CLIP's order
    in_affectnet = reorder(expclip_probs, EXPCLIP_ORDER, AFFECTNET_ORDER)
    np.testing.assert_array_equal(in_affectnet, [[0.2, 0.5, 0.1, 0.05, 0.03, 0.04, 0.05, 0.03]])
    np.testing.assert_array_equal(reorder(in_affectnet, AFFECTNET_ORDER, EXPCLIP_ORDER), expclip_probs)
    assert reorder(np.arange(7), FER2013_LABELS, RAFDB_ORDER).tolist() == [5, 2, 1, 3, 4, 0, 6]


def test_reorder_names_classes_the_source_lacks():
    with pytest.raises(UserError, match="missing contempt"):
        reorder(np.zeros(7), FER2013_LABELS, AFFECTNET_ORDER)
