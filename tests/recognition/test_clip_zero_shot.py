"""clip-zero-shot: prompts (templates x words) reduced to one text feature per class in label order, logits and
probabilities against hand-computed values on a stand-in CLIP, a random ViT-B-32 (clip_weights=None) end to end, and
one-line errors for bad prompts, labels and weights, found before any CLIP is built."""

import math

import numpy as np
import open_clip
import pytest
import torch
from torch import nn

from ned_outlier.errors import UserError
from ned_outlier.labels import EMOTIONS
from recognition import create_model
from recognition.models import clip_zero_shot

TEMPLATES = ("a {} face", "someone looking {}")
SCALE = 10.0  # exp(logit_scale)


class StandInClip(nn.Module):
    """encode_text: prompt strings (open_clip.tokenize patched to pass them through) -> the vectors of `vectors`;
    encode_image: the 'images' are the image features already."""

    def __init__(self, vectors: dict[str, torch.Tensor]):
        super().__init__()
        self.vectors, self.prompts = vectors, []
        self.logit_scale = nn.Parameter(torch.tensor(math.log(SCALE)))

    def encode_text(self, prompts):
        self.prompts += list(prompts)
        return torch.stack([self.vectors[prompt] for prompt in prompts])

    def encode_image(self, images):
        return images


def basis(index: int, length: int = 9) -> torch.Tensor:
    return torch.eye(length)[index]


def stand_in(words: dict[str, str]) -> StandInClip:
    """Class k (in EMOTIONS order) with word words[label]: template 0 -> e_k, template 1 -> 3 e_k + 4 e_8. After
    normalising each prompt, (e_k + 0.6 e_k + 0.8 e_8) / 2 = 0.8 e_k + 0.4 e_8, normalised: (2 e_k + e_8) / sqrt 5."""
    vectors = {}
    for k, label in enumerate(EMOTIONS):
        vectors[TEMPLATES[0].format(words[label])] = basis(k)
        vectors[TEMPLATES[1].format(words[label])] = 3 * basis(k) + 4 * basis(8)
    return StandInClip(vectors)


@pytest.fixture
def factory_with_stand_in(monkeypatch):
    """create_model("clip-zero-shot", ...) building on the stand-in CLIP for the words it will be given."""
    monkeypatch.setattr(open_clip, "tokenize", lambda prompts: list(prompts))

    def create(**options):
        words = {**clip_zero_shot.DEFAULT_WORDS, **options.get("words", {})}
        monkeypatch.setattr(clip_zero_shot, "load_clip", lambda architecture, weights: (stand_in(words), None))
        return create_model("clip-zero-shot", templates=TEMPLATES, clip_weights=None, **options)

    return create


def test_each_class_feature_is_the_normalised_mean_of_its_normalised_prompts(factory_with_stand_in):
    model = factory_with_stand_in(words={"happy": "joyful"})
    assert model.labels == EMOTIONS[:7]
    expected = torch.stack([(2 * basis(k) + basis(8)) / math.sqrt(5) for k in range(7)])
    torch.testing.assert_close(model.class_features, expected)
    prompts = model.clip.prompts
    assert len(prompts) == 7 * 2 and "a joyful face" in prompts and "someone looking fearful" in prompts
    assert "a happy face" not in prompts  # the user's word replaced the default one


def test_eight_classes_add_contempt_in_the_last_column(factory_with_stand_in):
    model = factory_with_stand_in(num_classes=8)
    assert model.labels == EMOTIONS and model.labels[-1] == "contempt"
    torch.testing.assert_close(model.class_features[7], (2 * basis(7) + basis(8)) / math.sqrt(5))
    assert "a contemptuous face" in model.clip.prompts


def test_logits_and_probabilities_by_hand(factory_with_stand_in):
    model = factory_with_stand_in()
    # image features 2 e_2 + e_8 (sad's own direction) and e_4 (fear's word vector alone)
    images = torch.stack([4 * basis(2) + 2 * basis(8), basis(4)])
    # row 0: cos with sad 1, with any other class 1/5; row 1: cos with fear 2/sqrt 5, with the others 0
    expected = SCALE * torch.tensor([[0.2, 0.2, 1.0, 0.2, 0.2, 0.2, 0.2], [0, 0, 0, 0, 2 / math.sqrt(5), 0, 0]])
    torch.testing.assert_close(model(images), expected)
    probabilities = model.predict_proba(images)
    assert probabilities.shape == (2, 7) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert [model.labels[k] for k in probabilities.argmax(axis=1)] == ["sad", "fear"]
    assert probabilities[0, 2] == pytest.approx(math.exp(10) / (math.exp(10) + 6 * math.exp(2)), rel=1e-5)


@pytest.fixture(scope="module")
def random_clip():
    torch.manual_seed(0)
    return create_model("clip-zero-shot", clip_weights=None)


def test_a_random_clip_classifies_face_crops(random_clip):
    faces = [np.random.default_rng(i).integers(0, 256, (120, 100, 3), dtype=np.uint8) for i in range(3)]
    assert random_clip.preprocess(faces[0]).shape == (3, 224, 224)
    probabilities = random_clip.predict_proba(faces)
    assert probabilities.shape == (3, 7) and random_clip.labels == EMOTIONS[:7]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    features = random_clip.class_features
    assert features.shape == (7, 512)
    torch.testing.assert_close(features.norm(dim=1), torch.ones(7))


def test_a_classs_word_changes_its_own_row_only(random_clip):
    words = {**clip_zero_shot.DEFAULT_WORDS, "sad": "gloomy"}
    gloomy = clip_zero_shot.ClipZeroShot(random_clip.clip, random_clip.transform, random_clip.labels,
                                         clip_zero_shot.DEFAULT_TEMPLATES, words)  # the same CLIP, other prompts
    others = [0, 1, 3, 4, 5, 6]
    torch.testing.assert_close(gloomy.class_features[others], random_clip.class_features[others])
    assert not torch.allclose(gloomy.class_features[2], random_clip.class_features[2])


@pytest.mark.parametrize("options, fragment", [
    ({"num_classes": 5}, "num_classes must be 7 or 8, got 5"),
    ({"templates": ()}, "templates must be a list of prompts"),
    ({"templates": "a photo of a {} face"}, "templates must be a list of prompts"),
    ({"templates": ("a photo of a face",)}, "template 'a photo of a face' must hold {} (the class's word) exactly"),
    ({"templates": ("a {} {} face",)}, "must hold {} (the class's word) exactly once"),
    ({"templates": ("a {0} face",)}, "must hold {} (the class's word) exactly once"),
    ({"words": {"joy": "glad"}}, "words for unknown emotion 'joy'"),
    ({"words": {"happy": " "}}, "the word for happy must be a non-empty string"),
    ({"words": {"sad": "happy"}}, "happy and sad share the word 'happy'"),
])  # fmt: skip
def test_bad_prompts_and_labels_are_one_line_errors_before_clip_is_built(tmp_path, options, fragment):
    absent = tmp_path / "ViT-B-32.pt"  # loading it would fail with another message: the checks come first
    with pytest.raises(UserError) as error:
        create_model("clip-zero-shot", clip_weights=absent, **options)
    message = str(error.value)
    assert fragment in message and "\n" not in message and message.startswith("clip-zero-shot: ")


def test_contempts_word_matters_only_with_eight_classes(factory_with_stand_in):
    assert factory_with_stand_in(words={"contempt": "angry"}).labels == EMOTIONS[:7]
    with pytest.raises(UserError, match="angry and contempt share the word 'angry'"):
        factory_with_stand_in(words={"contempt": "angry"}, num_classes=8)


def test_pretrained_wins_over_clip_weights_and_missing_weights_are_named(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="CLIP weights not found at .*none.pt"):
        create_model("clip-zero-shot", pretrained=tmp_path / "none.pt", clip_weights=None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="clip_weights=PATH"):
        create_model("clip-zero-shot")  # the 'openai' tag, not cached here: nothing is downloaded
