"""Exp-CLIP's LLM target files: exact round trip and clear errors."""

import pytest
import torch
from safetensors.torch import save_file

from ned_outlier.errors import UserError
from recognition.data.llm_targets import INSTRUCTION, read_llm_targets, write_llm_targets


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
