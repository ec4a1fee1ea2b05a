"""The training loop: every family's loss goes down, checkpoints reload, a resumed run equals an uninterrupted one,
and two CPU processes (DDP over gloo) stay in sync."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.utils import set_seed
from safetensors.torch import load_file

from ned_outlier.errors import UserError
from recognition import create_model
from recognition.checkpoint import checkpoint_metadata
from recognition.data.llm_targets import write_llm_targets
from ned_outlier.config import parse_overrides
from recognition.training.config import load_training_config
from recognition.training.trainer import train
from tests.factories import killed_after_a_checkpoint, launch_two_cpu_processes, per_process_checksums

REPO = Path(__file__).resolve().parents[2]


def write_config(path, text):
    path.write_text(text)
    return path


def cnn_config(tmp_path, faces, output, epochs=2):
    return write_config(tmp_path / "cnn.yaml", f"""
model: {{name: cnn-mobilenetv2, options: {{num_classes: 7, hidden: 16, dropout: 0.0}}}}
data: {{train: {{root: {faces / 'train'}}}, val: {{root: {faces / 'val'}}}}}
optim: {{name: adam, lr: 1.0e-3}}
train: {{output_dir: {output}, epochs: {epochs}, batch_size: 8, log_every: 1}}
""")


def test_config_rejects_unknown_keys_and_parses_overrides(tmp_path):
    bad = write_config(tmp_path / "bad.yaml", "model: {name: cnn-mobilenetv2}\ntrain: {epoch: 3}\n")
    with pytest.raises(UserError, match="unknown key 'epoch'"):
        load_training_config(bad)
    good = write_config(tmp_path / "good.yaml", "model: {name: cnn-mobilenetv2}\n")
    config = load_training_config(good, ["train.epochs=4", "model.options={hidden: 8}"])
    assert config.train.epochs == 4 and config.model.options == {"hidden": 8}
    assert parse_overrides(["optim.text_lr=1e-5"]) == {"optim.text_lr": 1e-5}
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_overrides(["train.epochs"])


def test_cnn_learns_and_its_checkpoint_reloads(tmp_path, colour_faces):
    result = train(load_training_config(cnn_config(tmp_path, colour_faces, tmp_path / "run", epochs=3)))
    assert result.history[-1] < result.history[0]
    assert set(result.val) == {"val/war", "val/uar"}
    metadata = checkpoint_metadata(result.model_path)
    assert metadata["model"] == "cnn-mobilenetv2" and metadata["labels"][:3] == ("neutral", "happy", "sad")
    reloaded = create_model("cnn-mobilenetv2", pretrained=result.model_path)
    for key, value in load_file(result.model_path).items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)
    assert any((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))
    with pytest.raises(UserError, match="is a cnn-mobilenetv2 checkpoint"):
        create_model("cnn-efficientnet-b0", pretrained=result.model_path)


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, colour_faces):
    straight = train(load_training_config(cnn_config(tmp_path, colour_faces, tmp_path / "straight", epochs=2)))
    first = train(load_training_config(cnn_config(tmp_path, colour_faces, tmp_path / "resumed", epochs=1)))
    resumed = train(load_training_config(cnn_config(tmp_path, colour_faces, tmp_path / "resumed", epochs=2)))
    assert len(first.history) == 1 and len(resumed.history) == 1  # the second run did epoch 2 only
    expected, got = load_file(straight.model_path), load_file(resumed.model_path)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


class RunsCode:
    """Unpickled, it would create the file `marker` (what a crafted file in someone else's run folder could do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin"])
def test_a_crafted_pickle_in_the_resume_state_is_refused_and_runs_no_code(tmp_path, colour_faces, name):
    """accelerate unpickled custom_checkpoint_0.pkl (the Progress) with weights_only=False; the resume state is now
    read without unpickling code, every file of it, and the run stops with one line before loading any of it."""
    run = tmp_path / "run"
    train(load_training_config(cnn_config(tmp_path, colour_faces, run, epochs=1)))
    marker = tmp_path / "marker"
    torch.save({"epoch": RunsCode(marker)}, run / "checkpoints" / "last" / name)
    with pytest.raises(UserError) as refused:
        train(load_training_config(cnn_config(tmp_path, colour_faces, run, epochs=2)))
    message = str(refused.value)
    assert "\n" not in message and message.startswith(str(run / "checkpoints" / "last"))
    assert "not loaded" in message and "resume only run folders you made" in message
    assert not marker.exists()


def test_a_run_killed_after_a_mid_epoch_checkpoint_resumes_to_the_same_weights(tmp_path, colour_faces):
    """train.checkpoint_every: the state saved inside an epoch gives back the uninterrupted run exactly, with random
    flips (drawn per sample, epoch and seed, so the loader's fetching ahead does not move them) and dropout."""
    import recognition.training.trainer as trainer

    def config(output):
        path = cnn_config(tmp_path, colour_faces, output)
        text = path.read_text().replace("dropout: 0.0", "dropout: 0.3").replace("log_every: 1", "checkpoint_every: 2")
        return load_training_config(write_config(path, text))

    straight = train(config(tmp_path / "straight"))
    with killed_after_a_checkpoint(trainer):  # dies right after the checkpoint at iteration 2
        train(config(tmp_path / "resumed"))
    resumed = train(config(tmp_path / "resumed"))
    expected, got = load_file(straight.model_path), load_file(resumed.model_path)
    assert [key for key in expected if not torch.equal(got[key], expected[key])] == []


def test_exp_clip_head_learns_llm_targets_and_saves_only_the_head(tmp_path, colour_faces):
    images = sorted(str(p.relative_to(colour_faces)) for p in (colour_faces / "train").rglob("*.png"))[:16]
    targets = torch.randn(len(images), 4096, generator=torch.Generator().manual_seed(0))
    write_llm_targets(colour_faces / "targets_test.safetensors", images, targets, llm="random (test)")
    config = write_config(tmp_path / "exp.yaml", f"""
model: {{name: exp-clip-vit-b-32, options: {{clip_weights: null}}}}
data: {{llm_targets: {colour_faces / 'targets_test.safetensors'}, hflip: false}}
optim: {{name: sgd, lr: 1.0, momentum: 0.9, weight_decay: 1.0e-4}}
train: {{output_dir: {tmp_path / 'exp'}, epochs: 4, batch_size: 8, drop_last: true}}
""")
    result = train(load_training_config(config))
    assert result.history[-1] < result.history[0]
    assert set(load_file(result.model_path)) == {"head.weight"}
    reloaded = create_model("exp-clip-vit-b-32", pretrained=result.model_path, clip_weights=None)
    torch.testing.assert_close(reloaded.head.weight, load_file(result.model_path)["head.weight"])


def test_missing_training_data_is_a_user_error(tmp_path):
    config = write_config(tmp_path / "none.yaml", f"model: {{name: cnn-mobilenetv2}}\n"
                                                  f"train: {{output_dir: {tmp_path / 'x'}}}\n")
    with pytest.raises(UserError, match="data.train.root is required"):
        train(load_training_config(config))


@pytest.mark.slow
def test_two_cpu_processes_stay_in_sync(tmp_path, colour_faces):
    """accelerate launch with 2 gloo ranks: both finish with identical parameters, and the loss went down."""
    config = cnn_config(tmp_path, colour_faces, tmp_path / "ddp", epochs=2)
    result = launch_two_cpu_processes("train_recognition.py", "--config", config)
    checksums = per_process_checksums(result.stdout, "parameter")
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    losses = [float(x) for x in re.search(r"loss per epoch: (.+)", result.stdout).group(1).split()]
    assert losses[-1] < losses[0]


def test_caption_clip_trains_with_two_learning_rates_and_reloads(tmp_path, colour_faces):
    """One AdamW step (the 24 training images in one batch, no weight decay): Adam's first step moves every
    parameter whose gradient is not zero by its group's learning rate, lr * g / (|g| + eps), so the largest move of
    the image side is 1e-4 and of the text side 1e-5."""
    options = {"text_layers": 1, "text_dim": 32, "text_heads": 2, "text_hidden": 64, "input_size": 64}
    config = write_config(tmp_path / "caption.yaml", f"""
model: {{name: caption-clip-resnet50, options: {options}}}
data: {{train: {{root: {colour_faces / "train"}}}}}
optim: {{name: adamw, lr: 1.0e-4, text_lr: 1.0e-5}}
train: {{output_dir: {tmp_path / 'caption'}, epochs: 1, batch_size: 24, seed: 0}}
""")
    result = train(load_training_config(config))
    assert len(result.history) == 1 and np.isfinite(result.history[0])
    set_seed(0)  # as train() does before it builds the model: the same initial weights
    initial = create_model("caption-clip-resnet50", **options)
    trained = load_file(result.model_path)
    moves = {"image": [], "text": []}
    for name, parameter in initial.named_parameters():
        side = "image" if name.startswith(("image_encoder.", "image_projection.")) else "text"
        moves[side].append((trained[name] - parameter.detach()).abs().max().item())
    assert max(moves["image"]) == pytest.approx(1e-4, rel=1e-2)
    assert max(moves["text"]) == pytest.approx(1e-5, rel=1e-2)
    reloaded = create_model("caption-clip-resnet50", pretrained=result.model_path, **options)
    for key, value in trained.items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)
    optimizer = torch.load(tmp_path / "caption" / "checkpoints" / "last" / "optimizer.bin", weights_only=False)
    assert sorted(group["lr"] for group in optimizer["param_groups"]) == [1e-5, 1e-4]
