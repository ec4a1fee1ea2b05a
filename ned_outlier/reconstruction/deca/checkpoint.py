"""Load DECA's released `deca_model.tar` and EMOCA's released Lightning checkpoint, from the user's own files.

Neither may be redistributed (MPI licences), so nothing here downloads: a missing file is a one-line UserError that
says where the path is given and where to register. Unlike DECA's and EMOCA's own loaders, which skip missing or
mis-shaped keys without a word (leaving random weights in place), these refuse any file whose weights do not cover
the encoder exactly, naming the first wrong key.

deca_model.tar: `torch.save` of {'E_flame': ..., 'E_detail': ..., 'D_detail': ...} state dicts (a training checkpoint
    also has 'opt' and 'global_step'). Only E_flame, the coarse encoder, is read; the detail encoder and decoder are
    not used here and are ignored.
EMOCA (e.g. EMOCA/detail/checkpoints/*.ckpt): a PyTorch Lightning checkpoint whose 'state_dict' holds the whole
    model under 'deca.': 'deca.E_flame.*' (DECA's coarse encoder) and 'deca.E_expression.*' are read; everything else
    (detail networks, FLAME buffers, loss networks) is ignored.

Both are read with torch.load(weights_only=True): the weights are plain tensors in dicts, and weights_only refuses to
run code from a pickle, which a full unpickle of a file from the web would. EMOCA's checkpoints, written by Lightning
1.4, also key their callback states by callback class; torch's weights-only reader refuses such a name outright, so
each name it does not allow is first listed from the file (statically: nothing is imported or run) and stood in for
by an inert placeholder class; the file is then read with weights_only=True still (torch keeps refusing os, sys,
...). BatchNorm's `num_batches_tracked` counters (unused at inference) may be absent.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.user_files import FLAME_REGISTRATION_URL, resolve_file, where_given
from ned_outlier.reconstruction.deca.encoder import DecaEncoder, EmocaEncoder

log = logging.getLogger(__name__)

DECA_MODEL_FLAG = "--deca-model"
DECA_MODEL_CONFIG_KEY = "flame.deca_model"
EMOCA_MODEL_CONFIG_KEY = "flame.emoca_model"
DECA_MODEL_ENV = "DECA_MODEL_PATH"
EMOCA_MODEL_FLAG = "--emoca-model"
EMOCA_MODEL_ENV = "EMOCA_MODEL_PATH"
DECA_REGISTRATION_URL = "https://deca.is.tue.mpg.de"
EMOCA_REGISTRATION_URL = "https://emoca.is.tue.mpg.de"

DECA_COARSE_KEY = "E_flame"
EMOCA_FLAME_PREFIX = "deca.E_flame."
EMOCA_EXPRESSION_PREFIX = "deca.E_expression."
OPTIONAL_SUFFIX = ".num_batches_tracked"


def _resolve(path: str | os.PathLike | None, name: str, flag: str, env: str, config_key: str,
             expected: str, registration: str, folder_ok: bool = False) -> Path:
    """The model file: `path`, else the environment variable `env`; UserError when neither names an existing file."""
    how = (f"{where_given(flag, config_key, env)} ({expected} comes with registration at {registration}, "
           f"which needs FLAME's at {FLAME_REGISTRATION_URL}; nothing is downloaded)")
    return resolve_file(path, f"{name} model", env, how, folder_ok)


def _inert_class(full_name: str) -> type:
    """A stand-in for the class or function `full_name` of a pickle: takes any arguments and state, does nothing."""

    def construct(cls, *args, **kwargs):
        return object.__new__(cls)

    def init(self, *args, **kwargs) -> None:
        self.args = args

    def set_state(self, state) -> None:
        self.state = state

    return type(full_name.rpartition(".")[2] or full_name, (),
                {"__new__": construct, "__init__": init, "__setstate__": set_state, "stands_for": full_name})


def _reason(error: BaseException) -> str:
    """One line on why torch.load failed; for a weights-only refusal, the refusal itself, without torch's advice to
    load the file with weights_only=False."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not (isinstance(error, pickle.UnpicklingError) and lines and lines[0].startswith("Weights only load failed")):
        return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"
    marker = "WeightsUnpickler error:"
    flagged = [line.split(marker, 1)[1].strip() for line in lines[1:] if marker in line]
    plain = [line for line in lines[1:] if marker not in line and not line.startswith(("(1)", "(2)", "Check the "))]
    detail = next((line for line in flagged + plain if line), "no reason given").split(" Please use", 1)[0]
    return f"torch's weights-only reader refused it: {detail[:300]}"


def _read(path: Path, name: str) -> object:
    """torch.load(path) weights-only, names of non-tensor classes replaced by inert stand-ins (module docstring)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as refused:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # not a zip checkpoint: nothing to stand in for
            names = []
        if not names:
            raise UserError(f"cannot read the {name} checkpoint {path} ({_reason(refused)})") from refused
    except Exception as error:
        raise UserError(f"cannot read the {name} checkpoint {path} ({_reason(error)})") from error
    log.info("%s: %d non-tensor names in the checkpoint read as inert stand-ins: %s", path, len(names),
             ", ".join(sorted(names)))
    try:
        with torch.serialization.safe_globals([(_inert_class(n), n) for n in names]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"cannot read the {name} checkpoint {path} ({_reason(error)})") from error


def _shape(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)}"
    return f"a {type(value).__name__}, not a tensor"


def _load_exact(model: nn.Module, found: Mapping, path: Path, what: str, prefix: str = "") -> None:
    """Load `found` (keys without `prefix`) into `model` if it covers the model's state dict exactly (names, shapes,
    floating or not); else a one-line UserError naming the first wrong key, keys written as in the file."""
    expected = model.state_dict()
    first, missing, wrong = None, 0, 0
    for key, tensor in expected.items():
        if key not in found:
            if key.endswith(OPTIONAL_SUFFIX):
                continue
            missing += 1
            first = first or f"key {prefix + key!r} (shape {tuple(tensor.shape)}) is missing"
            continue
        value = found[key]
        if (not isinstance(value, torch.Tensor) or value.shape != tensor.shape
                or value.is_floating_point() != tensor.is_floating_point()):
            wrong += 1
            kind = "" if not isinstance(value, torch.Tensor) else f" {value.dtype}"
            first = first or (f"key {prefix + key!r} has {_shape(value)}{kind}, expected shape "
                              f"{tuple(tensor.shape)} {tensor.dtype}")
    unexpected = [key for key in found if key not in expected]
    if first is None and unexpected:
        first = f"unexpected key {prefix + unexpected[0]!r} ({_shape(found[unexpected[0]])})"
    if first is not None:
        raise UserError(f"{path}: {what} does not match the expected layout: {first} ({missing} missing, "
                        f"{len(unexpected)} unexpected, {wrong} of wrong shape or type)")
    model.load_state_dict({key: found.get(key, tensor) for key, tensor in expected.items()}, strict=True)


def load_deca_encoder(path: str | os.PathLike | None = None) -> DecaEncoder:
    """DECA's coarse encoder (E_flame) from the user's deca_model.tar, in eval mode; `path` None reads
    DECA_MODEL_PATH. UserError when the file is missing, unreadable or not DECA's layout."""
    path = _resolve(path, "DECA", DECA_MODEL_FLAG, DECA_MODEL_ENV, DECA_MODEL_CONFIG_KEY, "deca_model.tar",
                    DECA_REGISTRATION_URL)
    checkpoint = _read(path, "DECA")
    coarse = checkpoint.get(DECA_COARSE_KEY) if isinstance(checkpoint, Mapping) else None
    if not isinstance(coarse, Mapping):
        found = sorted(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise UserError(f"{path} is not DECA's deca_model.tar: it holds no {DECA_COARSE_KEY!r} state dict "
                        f"(found {found})")
    encoder = DecaEncoder()
    _load_exact(encoder, coarse, path, f"DECA's {DECA_COARSE_KEY}")
    ignored = sorted(str(key) for key in checkpoint if key != DECA_COARSE_KEY)
    log.info("DECA coarse encoder loaded from %s (not used here, ignored: %s)", path, ", ".join(ignored) or "none")
    return encoder.eval()


def _emoca_checkpoint_file(path: Path) -> Path:
    """A .ckpt file itself, or the one .ckpt file anywhere under a folder (EMOCA's model folder)."""
    if path.is_file():
        return path
    found = sorted(path.rglob("*.ckpt"))
    if len(found) != 1:
        raise UserError(f"EMOCA model folder {path} holds {len(found)} .ckpt files, not one: give the checkpoint "
                        f"file itself with {EMOCA_MODEL_FLAG}")
    return found[0]


def load_emoca(path: str | os.PathLike | None = None) -> EmocaEncoder:
    """EMOCA's coarse encoders (DECA's E_flame and EMOCA's E_expression) from the user's EMOCA checkpoint (the
    .ckpt file or the model folder holding exactly one), in eval mode; `path` None reads EMOCA_MODEL_PATH."""
    path = _emoca_checkpoint_file(_resolve(path, "EMOCA", EMOCA_MODEL_FLAG, EMOCA_MODEL_ENV, EMOCA_MODEL_CONFIG_KEY,
                                           "the EMOCA model", EMOCA_REGISTRATION_URL, folder_ok=True))
    checkpoint = _read(path, "EMOCA")
    state = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise UserError(f"{path} is not an EMOCA (PyTorch Lightning) checkpoint: it holds no 'state_dict'")
    parts = {prefix: {key[len(prefix):]: value for key, value in state.items()
                      if isinstance(key, str) and key.startswith(prefix)}
             for prefix in (EMOCA_FLAME_PREFIX, EMOCA_EXPRESSION_PREFIX)}
    if not parts[EMOCA_EXPRESSION_PREFIX]:
        raise UserError(f"{path} holds no {EMOCA_EXPRESSION_PREFIX}* weights: not an EMOCA checkpoint (for DECA's "
                        f"deca_model.tar use {DECA_MODEL_FLAG})")
    model = EmocaEncoder()
    _load_exact(model.expression_encoder, parts[EMOCA_EXPRESSION_PREFIX], path, "EMOCA's E_expression",
                EMOCA_EXPRESSION_PREFIX)
    _load_exact(model.flame_encoder, parts[EMOCA_FLAME_PREFIX], path, "EMOCA's E_flame", EMOCA_FLAME_PREFIX)
    log.info("EMOCA coarse encoders loaded from %s (%d other weights ignored)", path,
             len(state) - sum(len(part) for part in parts.values()))
    return model.eval()
