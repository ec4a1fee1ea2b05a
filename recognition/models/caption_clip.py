"""Caption-CLIP: an image encoder and a DistilBERT text encoder trained on (face, sentence of its class) pairs.

    model = create_model("caption-clip-resnet50")                                    # random, offline (tests)
    model = create_model("caption-clip-vit", pretrained_backbone="vit_b16.safetensors",
                         text_weights="distilbert-base-uncased/")                   # the paper's starting point
    model = create_model("caption-clip-resnet50", pretrained="caption_clip.safetensors")   # a trained model
    model.predict_proba(faces)                    # softmax over the similarities to the class sentences, (N, C)
    model.retrieve("a wide smile", faces)         # text-to-image retrieval: indices, most similar first

Encoders: timm resnet50 / vit_base_patch16_224 (pooled features, 224 px input; `pretrained_backbone` is the user's
local ImageNet file, as for the CNN baselines) and DistilBERT, whose text embedding is the hidden state of the first
([CLS]) token. Each is followed by a projection head to 256-d (ProjectionHead). The paper trains with batch 16 for
50 epochs, lr 1e-4 for the image side and 1e-5 for the text side (parameter_groups); since the faces of one class
share one sentence, the loss has label-aware targets (recognition.losses.label_aware_clip_loss).

`text_weights`: None builds a small random DistilBERT (the factory's text_* sizes) with a WordPiece vocabulary
built from the eight sentences (nothing to download); a local directory holding a DistilBERT model and its tokenizer
(distilbert-base-uncased saved with save_pretrained) loads those. transformers is imported only when a model is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ned_outlier.errors import UserError
from recognition.losses import label_aware_clip_loss
from recognition.models.base import ImageClassifier
from recognition.models.cnn import build_backbone, emotion_labels, experiment_input_size
from recognition.registry import register_model

BACKBONES = {"caption-clip-resnet50": "resnet50", "caption-clip-vit": "vit_base_patch16_224"}
INPUT_SIZE = 224
EMBED_DIM = 256
"""Width of the shared image-text embedding space."""
DEFAULT_LOGIT_SCALE = 1 / 0.07
"""Inverse temperature of the cosine similarities: CLIP's initial 1/0.07, kept fixed rather than learned (the paper
names no temperature); the factory's `logit_scale`."""
TEXT_POOLINGS = ("cls", "mean")
"""How the text encoder's hidden states (N, T, dim) become one vector per sentence: the [CLS] token's (DistilBERT's
convention, the default), or the mean over the sentence's tokens (padding excluded). From random weights the [CLS]
states of the eight sentences are all but equal and contrastive training does not leave that start; their means
differ from the first step (configs/recognition/accuracy_benchmark.yaml)."""
MAX_TEXT_TOKENS = 128
"""Positions of the random DistilBERT; the longest sentence is under 50 tokens."""
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
SENTENCES_FILE = Path(__file__).with_name("caption_clip_sentences.yaml")


@cache
def class_sentences() -> dict[str, str]:
    """{canonical emotion: the paper's sentence}, in the order of EMOTIONS, from caption_clip_sentences.yaml."""
    return yaml.safe_load(SENTENCES_FILE.read_text())


def build_offline_tokenizer(corpus: Sequence[str], max_length: int = MAX_TEXT_TOKENS):
    """A lowercase BERT-style WordPiece tokenizer for `corpus`, as a transformers fast tokenizer: [CLS] text [SEP].

    Vocabulary (sorted, so identical in every process; the tokenizers trainer's ties are not): the special tokens
    ([PAD] = 0), every word of the corpus, and each character of a-z, 0-9 and the corpus alone and as '##' piece, so
    that any other word of those characters splits into pieces instead of [UNK].
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = {word for text in corpus for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))}
    characters = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789").union(*words))
    tokens = [*SPECIAL_TOKENS, *sorted(words.union(characters)), *(f"##{c}" for c in characters)]
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(tokens)}, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer, tokenizer.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    cls, sep = tokens.index("[CLS]"), tokens.index("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", model_max_length=max_length)


def load_text_encoder(name: str, text_weights: str | Path | None, dim: int, layers: int, heads: int,
                      hidden: int) -> tuple[nn.Module, object]:
    """(DistilBertModel, its tokenizer): random of the given sizes when `text_weights` is None, else loaded from the
    local directory `text_weights` (the sizes are then the directory's); UserError when that is not usable."""
    if text_weights is None:
        from transformers import DistilBertConfig, DistilBertModel

        tokenizer = build_offline_tokenizer(list(class_sentences().values()))
        config = DistilBertConfig(vocab_size=len(tokenizer), max_position_embeddings=MAX_TEXT_TOKENS, dim=dim,
                                  n_layers=layers, n_heads=heads, hidden_dim=hidden,
                                  pad_token_id=tokenizer.pad_token_id)
        return DistilBertModel(config), tokenizer
    path = Path(text_weights)
    hint = ("a local directory with a DistilBERT model and its tokenizer, e.g. distilbert-base-uncased saved with "
            "save_pretrained; nothing is downloaded, or text_weights=None for a random one")
    if not path.is_dir():
        raise UserError(f"{name}: text encoder weights not found at {path} ({hint})")
    from transformers import DistilBertModel, DistilBertTokenizer  # the fast (tokenizers) one in transformers 5

    try:
        return DistilBertModel.from_pretrained(path), DistilBertTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        message = str(error).splitlines()[0]
        raise UserError(f"{name}: cannot load the text encoder from {path}: {message} ({hint})") from None


class ProjectionHead(nn.Module):
    """(N, F) -> (N, D): p = Linear(F, D)(x); LayerNorm(p + Dropout(Linear(D, D)(GELU(p)))), the head of the common
    PyTorch CLIP tutorials (the paper states only 'projection heads to 256-d')."""

    def __init__(self, in_features: int, out_features: int = EMBED_DIM, dropout: float = 0.1):
        super().__init__()
        self.project = nn.Linear(in_features, out_features)
        self.fc = nn.Linear(out_features, out_features)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = self.project(x)
        return self.norm(projected + self.dropout(self.fc(F.gelu(projected))))


class CaptionCLIP(ImageClassifier, nn.Module):
    """images (N, 3, 224, 224) -> (N, 256) and sentences -> (N, 256); logits (N, C) = scale * cos(image, sentence of
    each class)."""

    def __init__(self, image_encoder: nn.Module, text_encoder: nn.Module, tokenizer, labels: tuple[str, ...],
                 logit_scale: float, dropout: float, input_size: int = INPUT_SIZE, text_pooling: str = "cls"):
        super().__init__()
        if text_pooling not in TEXT_POOLINGS:
            raise UserError(f"caption-clip: text_pooling must be one of {', '.join(TEXT_POOLINGS)}, got {text_pooling!r}")
        self.text_pooling = text_pooling
        self.labels = labels
        self.sentences = [class_sentences()[label] for label in labels]
        self.logit_scale = logit_scale
        self.input_size = input_size
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.image_projection = ProjectionHead(image_encoder.num_features, EMBED_DIM, dropout)
        self.text_projection = ProjectionHead(text_encoder.config.dim, EMBED_DIM, dropout)
        config = image_encoder.pretrained_cfg
        self.register_buffer("mean", torch.tensor(config["mean"]).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config["std"]).view(3, 1, 1), persistent=False)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) preprocessed -> (N, 256) projected image embeddings, not normalised."""
        return self.image_projection(self.image_encoder(images))

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """N sentences -> (N, 256) projected text embeddings (the [CLS] hidden state, or the mean over the tokens:
        text_pooling), not normalised."""
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt",
                                max_length=self.text_encoder.config.max_position_embeddings)
        device = self.mean.device
        mask = tokens["attention_mask"].to(device)
        hidden = self.text_encoder(input_ids=tokens["input_ids"].to(device), attention_mask=mask).last_hidden_state
        if self.text_pooling == "cls":
            return self.text_projection(hidden[:, 0])
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return self.text_projection((hidden * weights).sum(1) / weights.sum(1))

    def similarity(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        """(N, 256), (M, 256) -> (N, M) logit_scale * cosine similarities."""
        return self.logit_scale * F.normalize(image_embeddings, dim=-1) @ F.normalize(text_embeddings, dim=-1).T

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> logits (N, C): scaled cosine similarity to the sentence of each class."""
        return self.similarity(self.encode_images(images), self.encode_texts(self.sentences))

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """label_aware_clip_loss of images (N, 3, S, S) against the sentences of their classes `labels` (N,) (each
        sentence encoded once per sample, so that text dropout acts per pair in train mode); a scalar."""
        if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < len(self.labels):
            raise ValueError(f"labels must lie in [0, {len(self.labels)}), got {labels.tolist()}")
        texts = [self.sentences[label] for label in labels.tolist()]
        return label_aware_clip_loss(self.encode_images(images), self.encode_texts(texts), labels.to(self.mean.device),
                                     self.logit_scale)

    def parameter_groups(self, image_lr: float, text_lr: float) -> list[dict]:
        """Optimizer groups of the trainable parameters: image encoder + projection at `image_lr`, text encoder +
        projection at `text_lr`."""
        image = [*self.image_encoder.parameters(), *self.image_projection.parameters()]
        text = [*self.text_encoder.parameters(), *self.text_projection.parameters()]
        return [{"params": [p for p in image if p.requires_grad], "lr": image_lr},
                {"params": [p for p in text if p.requires_grad], "lr": text_lr}]

    @torch.inference_mode()
    def retrieve(self, text: str, images: Sequence[np.ndarray] | torch.Tensor) -> torch.Tensor:
        """Text-to-image retrieval: indices (N,) of `images` (RGB uint8 faces or a preprocessed batch), the most
        similar to `text` first."""
        was_training = self.training
        self.eval()
        batch = images if isinstance(images, torch.Tensor) else torch.stack([self.preprocess(f) for f in images])
        scores = self.similarity(self.encode_images(batch.to(self.mean.device)), self.encode_texts([text]))[:, 0]
        self.train(was_training)
        return scores.argsort(descending=True).cpu()

    def preprocess(self, face: np.ndarray) -> torch.Tensor:
        """RGB uint8 face crop (H, W, 3) -> (3, S, S) float32 (S = input_size, 224), resized (area) and normalised as
        the image encoder's ImageNet weights expect (timm's pretrained_cfg)."""
        if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {face.dtype} {face.shape}")
        resized = cv2.resize(face, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA)
        tensor = torch.from_numpy(resized).permute(2, 0, 1).float() / 255.0
        return (tensor - self.mean.cpu()) / self.std.cpu()


def load_trained_weights(name: str, model: CaptionCLIP, pretrained: str | Path) -> CaptionCLIP:
    """`model` with the whole state dict of a trained `name` from the .safetensors file `pretrained`; UserError
    when it does not fit."""
    try:
        model.load_state_dict(load_file(str(pretrained)))
    except (RuntimeError, OSError, SafetensorError) as error:
        raise UserError(f"{name}: {pretrained} is not a {name} state dict for these options (text_weights, "
                        f"text sizes): {str(error).splitlines()[-1].strip()}") from None
    return model


def build_caption_clip(name: str, pretrained: str | Path | None, pretrained_backbone: str | Path | None,
                       text_weights: str | Path | None, num_classes: int, logit_scale: float, dropout: float,
                       text_sizes: dict[str, int], input_size: int | None = None,
                       text_pooling: str = "cls") -> CaptionCLIP:
    """Checks the arguments before the (slow) build, then loads the trained state dict from `pretrained` if given.
    input_size: another image side than the paper's 224, for cheaper experiments only (a ViT is built for it)."""
    labels = emotion_labels(num_classes)
    size = experiment_input_size(name, input_size, INPUT_SIZE)
    if pretrained is not None and not Path(pretrained).is_file():
        raise UserError(f"{name}: trained weights not found at {pretrained} (a .safetensors state dict of the whole "
                        f"model, written by scripts/train_recognition.py)")
    text_encoder, tokenizer = load_text_encoder(name, text_weights, **text_sizes)
    vit_options = {"img_size": size} if BACKBONES[name].startswith("vit") else {}
    image_encoder = build_backbone(name, BACKBONES[name], pretrained_backbone, **vit_options)
    model = CaptionCLIP(image_encoder, text_encoder, tokenizer, labels, logit_scale, dropout, size, text_pooling)
    return model if pretrained is None else load_trained_weights(name, model, pretrained)


def _register(name: str) -> None:
    @register_model(name)
    def factory(pretrained: str | Path | None = None, pretrained_backbone: str | Path | None = None,
                text_weights: str | Path | None = None, num_classes: int = 7,
                logit_scale: float = DEFAULT_LOGIT_SCALE, dropout: float = 0.1, text_dim: int = 256,
                text_layers: int = 4, text_heads: int = 4, text_hidden: int = 1024,
                input_size: int | None = None, text_pooling: str = "cls") -> CaptionCLIP:
        sizes = {"dim": text_dim, "layers": text_layers, "heads": text_heads, "hidden": text_hidden}
        return build_caption_clip(name, pretrained, pretrained_backbone, text_weights, num_classes, logit_scale,
                                  dropout, sizes, input_size, text_pooling)

    factory.__doc__ = (f"Caption-CLIP: timm {BACKBONES[name]} + DistilBERT, projection heads to {EMBED_DIM}-d. "
                       f"text_dim/layers/heads/hidden size the random DistilBERT built when text_weights is None "
                       f"(default 256-d, 4 layers, 4 heads, 1024 feed-forward; distilbert-base is 768, 6, 12, 3072); "
                       f"text_pooling: 'cls' or 'mean' (TEXT_POOLINGS).")


for _name in BACKBONES:
    _register(_name)
