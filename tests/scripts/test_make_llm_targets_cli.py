"""scripts/make_llm_targets.py: Exp-CLIP's target file from a user's embedder or from precomputed embeddings."""

import numpy as np
import pytest

from recognition.data.llm_targets import INSTRUCTION, read_llm_targets
from recognition.training.data import LLMTargetFaces
from tests.scripts.cli_checks import assert_one_line_error, load_script, run, run_with_output

SCRIPT = load_script("make_llm_targets")

EMBEDDER = '''
import numpy as np

CALLS = []


def embed(paths, instruction):
    """Row i: the file's size in every column but the last, which holds the instruction's length."""
    CALLS.append(len(paths))
    rows = np.zeros((len(paths), 4096), np.float32)
    rows[:, :-1] = np.array([p.stat().st_size for p in paths], np.float32)[:, None]
    rows[:, -1] = len(instruction)
    return rows


def wrong_width(paths, instruction):
    return np.zeros((len(paths), 512))
'''


@pytest.fixture
def faces(tmp_path):
    """tmp/faces/{a,b}/ with three PNGs of different sizes."""
    from ned_outlier.io.image import write_image

    folder = tmp_path / "faces"
    for name, size in [("b/2.png", 20), ("a/1.png", 10), ("a/3.png", 30)]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(folder / name, np.full((size, size, 3), 128, np.uint8))
    return folder


@pytest.fixture
def embedder_module(tmp_path, monkeypatch):
    (tmp_path / "fake_llm.py").write_text(EMBEDDER)
    monkeypatch.chdir(tmp_path)  # the script puts the current folder on the import path, as for a user's module
    yield "fake_llm"
    import sys
    sys.modules.pop("fake_llm", None)


def test_embedder_rows_follow_the_sorted_images_in_batches(faces, embedder_module, capfd):
    out = faces / "targets.safetensors"
    code, _ = run(SCRIPT, capfd, faces, "--embedder", f"{embedder_module}:embed", "--llm", "fake", "--out", out,
                  "--batch-size", "2", "--quiet")
    assert code == 0
    import fake_llm
    assert fake_llm.CALLS == [2, 1]
    images, embeddings = read_llm_targets(out)
    assert images == ["a/1.png", "a/3.png", "b/2.png"]  # relative to the file's folder, sorted
    sizes = [(faces / name).stat().st_size for name in images]
    assert embeddings[:, 0].tolist() == sizes
    assert (embeddings[:, -1] == len(INSTRUCTION)).all()
    dataset = LLMTargetFaces(out, preprocess=lambda image: image.shape[0])
    assert [dataset[i][0] for i in range(3)] == [10, 30, 20]  # the trainer finds each row's own image


def test_precomputed_embeddings_are_stored_in_list_order(faces, tmp_path, capfd):
    code, listed, _ = run_with_output(SCRIPT, capfd, faces, "--list")
    assert code == 0 and listed.split() == [str(faces / n) for n in ("a/1.png", "a/3.png", "b/2.png")]
    rows = np.random.default_rng(0).normal(size=(3, 4096)).astype(np.float32)
    np.save(tmp_path / "emb.npy", rows)
    out = tmp_path / "elsewhere" / "targets.safetensors"
    code, _ = run(SCRIPT, capfd, faces, "--embeddings", tmp_path / "emb.npy", "--llm", "mine", "--out", out,
                  "--instruction", "Describe the face.")
    assert code == 0
    images, embeddings = read_llm_targets(out)
    assert images == listed.split()  # outside the file's folder: absolute paths
    np.testing.assert_array_equal(embeddings.numpy(), rows)


def test_bad_input_is_one_line_error(faces, embedder_module, tmp_path, capfd):
    out = tmp_path / "t.safetensors"
    np.save(tmp_path / "short.npy", np.zeros((2, 4096), np.float32))
    cases = [
        ([tmp_path / "missing", "--embeddings", tmp_path / "short.npy", "--llm", "x", "--out", out], "no such file"),
        ([tmp_path / "fake_llm.py", "--list"], "no images"),
        ([faces, "--embeddings", tmp_path / "short.npy", "--llm", "x", "--out", out], "(3, 4096)"),
        ([faces, "--embedder", f"{embedder_module}:wrong_width", "--llm", "x", "--out", out, "--quiet"], "(3, 4096)"),
        ([faces, "--embedder", "no_such_module:embed", "--llm", "x", "--out", out], "cannot load the embedder"),
        ([faces, "--embedder", "fake_llm", "--llm", "x", "--out", out], "MODULE:FUNCTION"),
        ([faces, "--embeddings", tmp_path / "short.npy", "--out", out], "--llm NAME"),
    ]
    for argv, fragment in cases:
        assert_one_line_error(*run(SCRIPT, capfd, *argv), fragment)
    assert not out.exists()
