"""A BLIP-2 Flan-T5 small enough to build in a test: random weights, the real transformers classes and file layout.

    folder = write_tiny_blip2(tmp_path / "blip2")   # config, weights, image processor and tokenizer files

Its T5 is 4096 wide (one layer, 8-d attention), so its encoder states have Exp-CLIP's target width; 4 query tokens.
"""

from __future__ import annotations

from pathlib import Path

WORDS = ["<pad>", "</s>", "<unk>"] + ("please play the role of a facial action describer . objectively describe "
                                      "detailed actions person in image").split()
QUERY_TOKENS = 4
WIDTH = 4096


def tiny_tokenizer():
    """A word-level fast tokenizer over WORDS that closes every text with </s>, as T5's does."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def tiny_config(text_config=None):
    """Blip2Config of a 32 px ViT, a one-layer Q-Former and, by default, a one-layer T5 of WIDTH."""
    from transformers import Blip2Config, T5Config

    text_config = text_config or T5Config(vocab_size=len(WORDS), d_model=WIDTH, d_kv=4, d_ff=16, num_layers=1,
                                          num_decoder_layers=1, num_heads=2, decoder_start_token_id=0,
                                          pad_token_id=0, eos_token_id=1)
    return Blip2Config(
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        qformer_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                            vocab_size=30),
        text_config=text_config, num_query_tokens=QUERY_TOKENS)


def write_tiny_blip2(folder: Path) -> Path:
    """Save a random tiny BLIP-2 Flan-T5 with its image processor (32 px) and tokenizer to `folder`."""
    import torch
    from transformers import Blip2ForConditionalGeneration
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    torch.manual_seed(0)
    Blip2ForConditionalGeneration(tiny_config()).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    BlipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
