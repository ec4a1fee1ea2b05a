"""Exp-CLIP's LLM target files: exact round trip, the recorded recipe and clear errors; the BLIP-2 encoder-states
embedder on a tiny random BLIP-2 Flan-T5 (its pooling, and that images and instruction reach it) and its failures."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import OPTConfig

from ned_outlier.errors import UserError
from recognition.data.llm_targets import (ANSWER, ENCODER_STATES, INSTRUCTION, RECIPES, LLMTargetsInfo,
                                          blip2_encoder_embedder, read_llm_targets, read_llm_targets_info,
                                          write_llm_targets)
from tests.recognition.tiny_blip2 import QUERY_TOKENS, WIDTH, tiny_config, write_tiny_blip2


def test_round_trip_keeps_rows_in_image_order(tmp_path):
    images = ["a/0.jpg", "b/1.png", "ü/2.jpg"]
    embeddings = torch.randn(3, 4096, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "targets.safetensors"
    write_llm_targets(path, images, embeddings, llm="my-llm")
    read_images, read_embeddings = read_llm_targets(path)
    assert read_images == images and torch.equal(read_embeddings, embeddings)
    assert "facial action describer" in INSTRUCTION
    assert [p.name for p in tmp_path.iterdir()] == ["targets.safetensors"]  # no temporary file left


def test_writer_refuses_a_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match="4096"):
        write_llm_targets(tmp_path / "t.safetensors", ["x.jpg"], torch.zeros(1, 512), llm="x")


def test_missing_corrupt_and_mismatched_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_llm_targets(tmp_path / "none.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="not an LLM targets file"):
        read_llm_targets(corrupt)
    mismatched = tmp_path / "mismatched.safetensors"
    save_file({"embeddings": torch.zeros(2, 4096)}, str(mismatched), metadata={"images": '["only-one.jpg"]'})
    with pytest.raises(UserError, match="1 images but embeddings of shape"):
        read_llm_targets(mismatched)


def test_the_recipe_is_recorded_and_older_files_have_none(tmp_path):
    path = tmp_path / "targets.safetensors"
    write_llm_targets(path, ["a.jpg"], torch.zeros(1, 4096), llm="blip2", recipe=ENCODER_STATES)
    assert read_llm_targets_info(path) == LLMTargetsInfo("blip2", INSTRUCTION, ENCODER_STATES)
    write_llm_targets(path, ["a.jpg"], torch.zeros(1, 4096), llm="old")  # a file of before the recipe was recorded
    assert read_llm_targets_info(path).recipe is None
    with pytest.raises(ValueError, match="recipe must be one of"):
        write_llm_targets(path, ["a.jpg"], torch.zeros(1, 4096), llm="x", recipe="hidden")
    assert set(RECIPES) == {ENCODER_STATES, ANSWER}


@pytest.fixture(scope="module")
def tiny_blip2(tmp_path_factory):
    return write_tiny_blip2(tmp_path_factory.mktemp("blip2") / "blip2-flan-t5-tiny")


def colour(rgb, size=(20, 30)) -> Image.Image:
    return Image.fromarray(np.full((*size, 3), rgb, np.uint8))


def test_blip2_rows_are_encoder_states_averaged_over_query_and_instruction_tokens(tiny_blip2):
    # The released code reads the encoder's final layer norm with a forward hook; so does this test, independently
    # of how the embedder gets there: the row must be the mean over every one of the Q + L positions.
    embed = blip2_encoder_embedder(tiny_blip2)
    seen = []
    hook = embed.model.language_model.get_encoder().final_layer_norm.register_forward_hook(
        lambda module, inputs, output: seen.append(output.detach()))
    try:
        rows = embed([colour((200, 30, 30)), colour((30, 30, 200))], "Describe the facial action.")
    finally:
        hook.remove()
    assert len(seen) == 1  # one encoder pass, no answer generated
    instruction_tokens = ["describe", "the", "facial", "action", ".", "</s>"]
    assert seen[0].shape == (2, QUERY_TOKENS + len(instruction_tokens), WIDTH)
    np.testing.assert_allclose(rows, seen[0].mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)
    assert rows.shape == (2, 4096) and rows.dtype == np.float32


def test_blip2_rows_depend_on_the_image_and_the_instruction(tiny_blip2):
    embed = blip2_encoder_embedder(tiny_blip2)
    red, blue = colour((200, 30, 30)), colour((30, 30, 200))
    both = embed([red, blue], INSTRUCTION)
    assert np.abs(both[0] - both[1]).max() > 1e-3  # the image reaches the LLM
    np.testing.assert_allclose(embed([blue], INSTRUCTION)[0], both[1], rtol=1e-4, atol=1e-5)  # rows are per image
    other = embed([red, blue], "Describe the person.")
    assert np.abs(other - both).max() > 1e-3  # so does the instruction


def test_blip2_folder_problems_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="BLIP-2 folder not found: .*Salesforce/blip2-flan-t5-xxl"):
        blip2_encoder_embedder(tmp_path / "missing")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    with pytest.raises(UserError, match="lacks preprocessor_config.json .*tokenizer_config.json .*the weights"):
        blip2_encoder_embedder(partial)
    opt = tmp_path / "opt"
    tiny_config(OPTConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, ffn_dim=16,
                          word_embed_proj_dim=8)).save_pretrained(opt)
    for name in ("preprocessor_config.json", "tokenizer_config.json", "model.safetensors"):
        (opt / name).write_text("{}")
    with pytest.raises(UserError, match="decoder-only LLM"):
        blip2_encoder_embedder(opt)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "preprocessor_config.json", "tokenizer_config.json", "model.safetensors"):
        (broken / name).write_text("not json")
    with pytest.raises(UserError, match="cannot load BLIP-2 from"):
        blip2_encoder_embedder(broken)
