"""scripts/make_llm_targets.py: Exp-CLIP's target file from a local BLIP-2 (encoder states), a user's embedder or
precomputed embeddings, with the recipe recorded."""

import numpy as np
import pytest

from recognition.data.llm_targets import (ANSWER, ENCODER_STATES, INSTRUCTION, RECIPES, read_llm_targets,
                                          read_llm_targets_info)
from recognition.training.data import LLMTargetFaces
from tests.recognition.tiny_blip2 import write_tiny_blip2
from tests.scripts.cli_checks import assert_one_line_error, load_script, run, run_with_output

SCRIPT = load_script("make_llm_targets")

EMBEDDER = '''
import numpy as np

CALLS = []


def embed(images, instruction):
    """Row i: image i's width, height and mean red, green, blue, then zeros, the instruction's length last."""
    CALLS.append([image.mode for image in images])
    rows = np.zeros((len(images), 4096), np.float32)
    for row, image in zip(rows, images):
        row[:5] = [*image.size, *np.asarray(image).reshape(-1, 3).mean(axis=0)]
    rows[:, -1] = len(instruction)
    return rows


def wrong_width(images, instruction):
    return np.zeros((len(images), 512))
'''


COLOURS = {"a/1.png": (10, (200, 10, 10)), "a/3.png": (30, (10, 200, 10)), "b/2.png": (20, (10, 10, 200))}


@pytest.fixture
def faces(tmp_path):
    """tmp/faces/{a,b}/ with three square PNGs of different sizes and colours (COLOURS)."""
    from ned_outlier.io.image import write_image

    folder = tmp_path / "faces"
    for name, (size, rgb) in COLOURS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(folder / name, np.full((size, size, 3), rgb, np.uint8))
    return folder


@pytest.fixture
def embedder_module(tmp_path, monkeypatch):
    (tmp_path / "fake_llm.py").write_text(EMBEDDER)
    monkeypatch.chdir(tmp_path)  # the script puts the current folder on the import path, as for a user's module
    yield "fake_llm"
    import sys
    sys.modules.pop("fake_llm", None)


def test_embedder_gets_each_image_and_the_instruction_in_sorted_batches(faces, embedder_module, capfd):
    out = faces / "targets.safetensors"
    code, _ = run(SCRIPT, capfd, faces, "--embedder", f"{embedder_module}:embed", "--recipe", "encoder-states",
                  "--llm", "fake", "--out", out, "--batch-size", "2", "--quiet")
    assert code == 0
    import fake_llm
    assert fake_llm.CALLS == [["RGB", "RGB"], ["RGB"]]  # RGB PIL images, a batch at a time
    images, embeddings = read_llm_targets(out)
    assert images == ["a/1.png", "a/3.png", "b/2.png"]  # relative to the file's folder, sorted
    expected = [[size, size, *rgb] for size, rgb in (COLOURS[name] for name in images)]  # the pixels, in RGB order
    np.testing.assert_allclose(embeddings[:, :5].numpy(), expected)
    assert (embeddings[:, -1] == len(INSTRUCTION)).all()
    info = read_llm_targets_info(out)
    assert (info.llm, info.instruction, info.recipe) == ("fake", INSTRUCTION, ENCODER_STATES)
    dataset = LLMTargetFaces(out, preprocess=lambda image: image.shape[0])
    assert [dataset[i][0] for i in range(3)] == [10, 30, 20]  # the trainer finds each row's own image


def test_precomputed_embeddings_are_stored_in_list_order(faces, tmp_path, capfd):
    code, listed, _ = run_with_output(SCRIPT, capfd, faces, "--list")
    assert code == 0 and listed.split() == [str(faces / n) for n in ("a/1.png", "a/3.png", "b/2.png")]
    rows = np.random.default_rng(0).normal(size=(3, 4096)).astype(np.float32)
    np.save(tmp_path / "emb.npy", rows)
    out = tmp_path / "elsewhere" / "targets.safetensors"
    code, _ = run(SCRIPT, capfd, faces, "--embeddings", tmp_path / "emb.npy", "--recipe", "answer", "--llm", "mine",
                  "--out", out, "--instruction", "Describe the face.")
    assert code == 0
    images, embeddings = read_llm_targets(out)
    assert images == listed.split()  # outside the file's folder: absolute paths
    np.testing.assert_array_equal(embeddings.numpy(), rows)
    assert read_llm_targets_info(out).recipe == ANSWER


def test_every_recipe_can_be_named(faces, tmp_path, capfd):
    np.save(tmp_path / "emb.npy", np.zeros((3, 4096), np.float32))
    for recipe in RECIPES:
        out = tmp_path / f"{recipe}.safetensors"
        code, _ = run(SCRIPT, capfd, faces, "--embeddings", tmp_path / "emb.npy", "--recipe", recipe, "--llm", "x",
                      "--out", out)
        assert code == 0 and read_llm_targets_info(out).recipe == recipe


def test_blip2_folder_writes_encoder_state_targets(faces, tmp_path, capfd):
    blip2 = write_tiny_blip2(tmp_path / "blip2-tiny")
    out = tmp_path / "targets.safetensors"
    code, _ = run(SCRIPT, capfd, faces, "--blip2", blip2, "--out", out, "--batch-size", "2", "--quiet")
    assert code == 0
    images, embeddings = read_llm_targets(out)
    assert len(images) == 3 and embeddings.shape == (3, 4096)
    assert (embeddings[0] - embeddings[2]).abs().max() > 1e-3  # a red and a blue face: different targets
    info = read_llm_targets_info(out)
    assert (info.llm, info.recipe) == ("BLIP-2 (blip2-tiny)", ENCODER_STATES)


def test_bad_input_is_one_line_error(faces, embedder_module, tmp_path, capfd):
    out = tmp_path / "t.safetensors"
    np.save(tmp_path / "short.npy", np.zeros((2, 4096), np.float32))
    cases = [
        ([tmp_path / "missing", "--embeddings", tmp_path / "short.npy", "--llm", "x", "--out", out], "no such file"),
        ([tmp_path / "fake_llm.py", "--list"], "no images"),
        ([faces, "--embeddings", tmp_path / "short.npy", "--recipe", "answer", "--llm", "x", "--out", out],
         "(3, 4096)"),
        ([faces, "--embedder", f"{embedder_module}:wrong_width", "--recipe", "answer", "--llm", "x", "--out", out,
          "--quiet"], "(3, 4096)"),
        ([faces, "--embedder", "no_such_module:embed", "--recipe", "answer", "--llm", "x", "--out", out],
         "cannot load the embedder"),
        ([faces, "--embedder", "fake_llm", "--recipe", "answer", "--llm", "x", "--out", out], "MODULE:FUNCTION"),
        ([faces, "--embeddings", tmp_path / "short.npy", "--recipe", "answer", "--out", out], "--llm NAME"),
        ([faces, "--embeddings", tmp_path / "short.npy", "--llm", "x", "--out", out], "--recipe"),
        ([faces, "--embeddings", tmp_path / "short.npy", "--recipe", "answer", "--llm", "x"], "--out FILE"),
        ([faces, "--blip2", tmp_path / "no_blip2", "--out", out], "BLIP-2 folder not found"),
        ([faces, "--blip2", tmp_path, "--recipe", "answer", "--out", out], "computes the encoder-states recipe"),
    ]
    for argv, fragment in cases:
        assert_one_line_error(*run(SCRIPT, capfd, *argv), fragment)
    assert not out.exists()
