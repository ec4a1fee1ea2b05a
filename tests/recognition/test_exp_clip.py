"""Exp-CLIP: prompt sets, zero-shot logits against the formula, head loading, offline failures."""

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ned_outlier.errors import UserError
from recognition import create_model, list_models
from recognition.labels import EMOTIONS
from recognition.models.exp_clip import LLM_DIM, prompt_sets


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("exp-clip-vit-b-32", clip_weights=None, prompt_set="ensemble-five")


def test_all_three_backbones_are_registered():
    assert list_models("exp-clip-*") == ["exp-clip-vit-b-16", "exp-clip-vit-b-32", "exp-clip-vit-l-14"]


def test_prompt_sets_cover_every_emotion_with_the_papers_sizes():
    sets = prompt_sets()
    sizes = {"class-name": 1, "an-expression-of": 1, "a-photo-of-a-face": 1, "ensemble-five": 5, "ensemble-ten": 10}
    assert {name: len(per_class["happy"]) for name, per_class in sets.items()} == sizes
    for name, per_class in sets.items():
        assert set(per_class) == set(EMOTIONS)
        assert all(len(prompts) == sizes[name] == len(set(prompts)) for prompts in per_class.values())
    assert sets["a-photo-of-a-face"]["angry"] == ["a photo of a face with an expression of anger."]


def test_head_is_bias_free_512_to_4096_and_clip_is_frozen(model):
    assert model.head.bias is None and tuple(model.head.weight.shape) == (LLM_DIM, 512)
    assert not any(p.requires_grad for p in model.clip.parameters())
    assert model.head.weight.requires_grad


def test_zero_shot_logits_average_the_scaled_cosines_of_each_class_prompts(model):
    images = torch.randn(2, 3, 224, 224)
    logits = model(images)
    image = F.normalize(model.head(model.clip.encode_image(images)), dim=-1)
    expected = torch.empty(2, len(model.labels))
    for c, prompts in enumerate(model.prompts):
        text = F.normalize(model.head(model.clip.encode_text(open_clip.tokenize(prompts))), dim=-1)
        expected[:, c] = model.clip.logit_scale.exp() * (image @ text.T).mean(dim=1)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


def test_predict_proba_on_face_crops(model):
    faces = [np.random.default_rng(i).integers(0, 256, (120, 100, 3), dtype=np.uint8) for i in range(3)]
    probabilities = model.predict_proba(faces)
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_trained_head_round_trips_through_safetensors(model, tmp_path):
    path = tmp_path / "head.safetensors"
    save_file({"weight": torch.randn(LLM_DIM, 512)}, str(path))
    loaded = create_model("exp-clip-vit-b-32", pretrained=path, clip_weights=None)
    assert torch.equal(loaded.head.weight, load_file(path)["weight"])


def test_missing_or_wrong_head_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="projection-head weights not found"):
        create_model("exp-clip-vit-b-32", pretrained=tmp_path / "none.safetensors", clip_weights=None)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"weight": torch.randn(LLM_DIM, 768)}, str(wrong))
    with pytest.raises(UserError, match="not a projection head"):
        create_model("exp-clip-vit-b-32", pretrained=wrong, clip_weights=None)


def test_openai_weights_offline_fail_fast_and_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="clip_weights=PATH"):
        create_model("exp-clip-vit-b-32")


def test_missing_clip_checkpoint_file_is_named(tmp_path):
    with pytest.raises(UserError, match="CLIP weights not found"):
        create_model("exp-clip-vit-b-32", clip_weights=tmp_path / "ViT-B-32.pt")


def test_unknown_prompt_set_lists_the_valid_ones():
    with pytest.raises(UserError, match="ensemble-ten"):
        create_model("exp-clip-vit-b-32", clip_weights=None, prompt_set="nope")
