"""Caption-CLIP: the paper's sentences, the offline tokenizer, logits and loss against their formulas, learning on a toy
batch, parameter groups, weights round trip, offline failures, lazy transformers import."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ned_outlier.errors import UserError
from recognition import create_model, list_models
from recognition.labels import EMOTIONS
from recognition.losses import label_aware_clip_loss
from recognition.models.caption_clip import EMBED_DIM, build_offline_tokenizer, class_sentences

PAPER_SENTENCES = {
    "neutral": "An expression of calm and neutrality, with a neutral mouth and no particular indication of emotion. "
               "The eyebrows are usually not raised or furrowed",
    "happy": "An expression of contentment and pleasure, with a smile and the corners of the mouth turned up, often "
             "accompanied by crinkling around the eyes. The face may appear relaxed and at ease",
    "sad": "An expression of sadness and sorrow, with a downturned mouth or frown, and sometimes tears or a tightness "
           "around the eyes. The face may appear physically withdrawn or resigned.",
    "surprised": "An expression of shock and astonishment, with wide-open eyes and raised eyebrows, sometimes "
                 "accompanied by a gasp or an open mouth",
    "fear": "An expression of tension and withdrawal, with wide-open eyes, raised eyebrows, and a slightly open mouth. "
            "The face may appear physically tense or frozen in fear",
    "disgusted": "An expression of repulsion and displeasure, with a raised upper lip, a scrunched nose, and a "
                 "downturned mouth",
    "angry": "A facial expression showing irritation and unrest, with a wrinkled forehead, narrowed eyes, and tight "
             "lips or a frown",
    "contempt": "An expression of disdain and superiority, with a slight smirk or sneer, often accompanied by a raised "
                "eyebrow or a lopsided smile",
}  # fmt: skip
TINY_TEXT = {"text_dim": 32, "text_layers": 1, "text_heads": 2, "text_hidden": 64}
COLOURS = torch.tensor([[1.5, -1.5, -1.5], [-1.5, 1.5, -1.5], [-1.5, -1.5, 1.5]])


def tiny(name="caption-clip-resnet50", seed=0, **kwargs):
    """A random caption-CLIP with a one-layer 32-d text encoder."""
    torch.manual_seed(seed)
    return create_model(name, **TINY_TEXT, **kwargs)


def colour_batch(labels, size=32, seed=0):
    """(N, 3, size, size) noisy images, one flat colour per label (normalised-image scale)."""
    noise = torch.randn(len(labels), 3, size, size, generator=torch.Generator().manual_seed(seed))
    return COLOURS[labels][:, :, None, None] + 0.3 * noise


def faces(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (90, 70, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture(scope="module")
def model():
    return tiny()


@pytest.fixture(scope="module")
def fresh_process():
    """In a new interpreter: what importing recognition loads, then the offline vocabulary built there."""
    script = (
        "import json, sys, recognition\n"
        "loaded = {name: name in sys.modules for name in ('transformers.models.distilbert', 'transformers')}\n"
        "from recognition.models.caption_clip import build_offline_tokenizer, class_sentences\n"
        "vocab = build_offline_tokenizer(list(class_sentences().values())).get_vocab()\n"
        "print(json.dumps({'loaded': loaded, 'vocab': vocab}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_both_image_encoders_are_registered():
    assert list_models("caption-clip-*") == ["caption-clip-resnet50", "caption-clip-vit"]


def test_sentences_are_the_papers_verbatim_in_label_order(model):
    assert class_sentences() == PAPER_SENTENCES
    assert tuple(class_sentences()) == EMOTIONS
    assert model.sentences == [PAPER_SENTENCES[label] for label in EMOTIONS[:7]]


def test_offline_tokenizer_is_deterministic_and_round_trips_the_sentences(fresh_process):
    tokenizer = build_offline_tokenizer(list(PAPER_SENTENCES.values()))
    assert tokenizer.get_vocab() == fresh_process["vocab"]  # same ids in another process
    assert tokenizer.pad_token_id == 0
    words = {word for sentence in PAPER_SENTENCES.values() for word in re.findall(r"[a-z]+", sentence.lower())}
    assert all(tokenizer.tokenize(word) == [word] for word in words)
    for sentence in PAPER_SENTENCES.values():
        ids = tokenizer(sentence)["input_ids"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True).replace(" - ", "-") == sentence.lower()
    assert tokenizer.unk_token_id not in tokenizer("zebra grinning 42")["input_ids"]  # unseen words split


def test_importing_recognition_does_not_load_the_text_encoder(fresh_process):
    # open_clip (Exp-CLIP) itself imports the transformers package once it is installed; caption-CLIP adds nothing
    assert fresh_process["loaded"]["transformers.models.distilbert"] is False


def test_logits_are_scaled_cosines_to_the_class_sentences(model):
    model.eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        logits = model(images)
        image = F.normalize(model.encode_images(images), dim=-1)
        text = F.normalize(model.encode_texts(model.sentences), dim=-1)
    assert logits.shape == (2, 7) and image.shape == (2, EMBED_DIM) and text.shape == (7, EMBED_DIM)
    torch.testing.assert_close(logits, model.logit_scale * image @ text.T)


def test_text_embedding_is_the_projected_cls_hidden_state(model):
    model.eval()
    tokens = model.tokenizer(model.sentences[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.text_encoder(**tokens).last_hidden_state
        torch.testing.assert_close(model.encode_texts(model.sentences[:2]), model.text_projection(hidden[:, 0]))


def test_mean_pooled_text_embedding_averages_the_tokens_of_each_sentence_without_padding():
    model = tiny(text_pooling="mean").eval()
    short, long = "a smile", model.sentences[0]
    with torch.no_grad():
        pooled = model.encode_texts([short, long])
        for row, sentence in enumerate((short, long)):  # alone: no padding to leave out
            alone = model.tokenizer([sentence], return_tensors="pt")
            hidden = model.text_encoder(**alone).last_hidden_state[0]
            torch.testing.assert_close(pooled[row], model.text_projection(hidden.mean(0, keepdim=True))[0],
                                       rtol=1e-4, atol=1e-5)


def test_unknown_text_pooling_is_a_user_error():
    with pytest.raises(UserError, match="text_pooling must be one of cls, mean"):
        tiny(text_pooling="max")


def test_predict_proba_on_face_crops_with_7_and_8_classes(model):
    probabilities = model.predict_proba(faces(3))
    assert probabilities.shape == (3, 7) and model.labels == EMOTIONS[:7]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    vit = tiny("caption-clip-vit", num_classes=8)
    assert vit.labels == EMOTIONS and vit.preprocess(faces(1)[0]).shape == (3, 224, 224)
    probabilities = vit.predict_proba(faces(2))
    assert probabilities.shape == (2, 8)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_training_loss_is_label_aware_clip_loss_on_the_class_sentences(model):
    model.eval()
    labels = torch.tensor([2, 0, 2, 1])
    images = colour_batch(labels)
    with torch.no_grad():
        expected = label_aware_clip_loss(model.encode_images(images),
                                         model.encode_texts([model.sentences[i] for i in labels]), labels,
                                         model.logit_scale)
        torch.testing.assert_close(model.training_loss(images, labels), expected)
    with pytest.raises(ValueError, match="labels must lie in"):
        model.training_loss(images, torch.tensor([0, 1, 2, 7]))


def test_text_dropout_acts_per_sample_in_train_mode(model):
    model.train()
    with torch.no_grad():
        twice = model.encode_texts([model.sentences[0]] * 2)
    model.eval()
    assert not torch.allclose(twice[0], twice[1])


def test_parameter_groups_cover_every_trainable_parameter_once():
    model = tiny()
    model.text_encoder.embeddings.position_embeddings.requires_grad_(False)
    image, text = model.parameter_groups(1e-4, 1e-5)
    assert (image["lr"], text["lr"]) == (1e-4, 1e-5)
    ids = [id(p) for p in image["params"] + text["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in model.image_projection.parameters()} <= {id(p) for p in image["params"]}
    assert {id(p) for p in model.text_projection.parameters()} <= {id(p) for p in text["params"]}


def test_a_few_adam_steps_learn_three_coloured_classes():
    model = tiny(dropout=0.0)
    model.image_encoder.requires_grad_(False)  # keeps the test fast: the heads and the text encoder learn
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    images = colour_batch(labels)
    optimizer = torch.optim.Adam(model.parameter_groups(1e-3, 1e-2))
    model.eval()
    with torch.no_grad():
        before = model.training_loss(images, labels).item()
    for _ in range(20):
        model.train()
        model.image_encoder.eval()
        loss = model.training_loss(images, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = model.training_loss(images, labels).item()
        predicted = model(images)[:, :3].argmax(dim=1)
    assert after < before - 0.5
    assert (predicted == labels).sum() >= 6
    assert model.retrieve(model.sentences[2], images)[:2].sort().values.tolist() == [6, 7]


def test_retrieval_ranks_images_by_similarity_to_the_text(model):
    model.eval()
    images = colour_batch(torch.tensor([0, 1, 2, 0, 1]))
    with torch.no_grad():
        scores = model(images)[:, 1]
    order = model.retrieve(model.sentences[1], images)
    assert sorted(order.tolist()) == list(range(5))
    assert torch.all(scores[order][:-1] >= scores[order][1:])


def test_trained_weights_round_trip_through_safetensors(model, tmp_path):
    path = tmp_path / "caption_clip.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))
    loaded = tiny(seed=1, pretrained=path).eval()
    model.eval()
    images = torch.randn(2, 3, 224, 224)
    np.testing.assert_array_equal(loaded.predict_proba(images), model.predict_proba(images))
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))


def test_missing_or_mismatched_weights_are_user_errors(model, tmp_path):
    with pytest.raises(UserError, match="trained weights not found"):
        tiny(pretrained=tmp_path / "none.safetensors")
    wrong = tmp_path / "wrong.safetensors"
    save_file({"image_projection.project.weight": torch.zeros(EMBED_DIM, 3)}, str(wrong))
    with pytest.raises(UserError, match="is not a caption-clip-resnet50 state dict"):
        tiny(pretrained=wrong)


def test_text_weights_must_be_a_local_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="text encoder weights not found at .*distilbert"):
        create_model("caption-clip-resnet50", text_weights=tmp_path / "distilbert-base-uncased")
    with pytest.raises(UserError, match="nothing is downloaded"):
        create_model("caption-clip-resnet50", text_weights="distilbert-base-uncased")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cannot load the text encoder"):
        create_model("caption-clip-resnet50", text_weights=tmp_path / "empty")


def test_a_distilbert_directory_loads_with_its_tokenizer(model, tmp_path):
    model.text_encoder.save_pretrained(tmp_path)
    model.tokenizer.save_pretrained(tmp_path)
    loaded = tiny(text_weights=tmp_path)
    for key, value in model.text_encoder.state_dict().items():
        torch.testing.assert_close(loaded.text_encoder.state_dict()[key], value)
    assert loaded.tokenizer(model.sentences)["input_ids"] == model.tokenizer(model.sentences)["input_ids"]
