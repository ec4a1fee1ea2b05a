"""A parameter-space emotion classifier: which emotion a window of expression codes shows. The experiment trains it
on clean windows only and uses it as a judge of manipulated sequences, as NED's paper judges with a classifier.

    classifier = train_code_classifier(codes, labels, n_emotions=7, seed=0)   # codes (N, T, C), labels (N,)
    classifier.predict(codes)                                                   # (N,) class indices
    classifier.predict(codes, baseline)    # codes read relative to a (C,) or (N, C) baseline (a person's neutral)
    classifier = cached_code_classifier("judge.pt", codes, labels, 7)   # trained once, loaded when the data match
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ned_outlier.io.atomic import atomic_output


class CodeClassifier(nn.Module):
    """(N, T, C) code windows -> (N, K) logits: a 1-layer bidirectional GRU, mean over time, a linear layer. The
    codes are standardised with the training set's per-component mean and deviation (stored as buffers)."""

    def __init__(self, code_dim: int, n_emotions: int, hidden: int = 64):
        super().__init__()
        self.gru = nn.GRU(code_dim, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, n_emotions)
        self.register_buffer("mean", torch.zeros(code_dim))
        self.register_buffer("scale", torch.ones(code_dim))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.gru((codes - self.mean) / self.scale)
        return self.head(hidden.mean(dim=1))

    @torch.no_grad()
    def predict(self, codes: np.ndarray, baseline: np.ndarray | None = None) -> np.ndarray:
        """(N, T, C), optionally minus a (C,) or (N, C) baseline (the same as in training) -> (N,) class indices."""
        self.eval()
        return self(torch.from_numpy(relative_codes(codes, baseline))).argmax(dim=1).numpy()


def relative_codes(codes: np.ndarray, baseline: np.ndarray | None) -> np.ndarray:
    """(N, T, C) float32 codes minus a (C,) or (N, C) baseline, held constant over time (None: unchanged)."""
    codes = np.asarray(codes, np.float32)
    if baseline is None:
        return codes
    baseline = np.asarray(baseline, np.float32)
    return codes - (baseline[:, None, :] if baseline.ndim == 2 else baseline)


def train_code_classifier(codes: np.ndarray, labels: np.ndarray, n_emotions: int, seed: int = 0, epochs: int = 60,
                          batch_size: int = 64, lr: float = 3e-3, hidden: int = 64,
                          baseline: np.ndarray | None = None) -> CodeClassifier:
    """Adam with cross-entropy on (N, T, C) windows (minus the (N, C) baseline, if given) with (N,) labels;
    deterministic given the seed."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(relative_codes(codes, baseline))
    y = torch.from_numpy(np.asarray(labels, np.int64))
    model = CodeClassifier(x.shape[2], n_emotions, hidden)
    model.mean.copy_(x.reshape(-1, x.shape[2]).mean(dim=0))
    model.scale.copy_(x.reshape(-1, x.shape[2]).std(dim=0).clamp_min(1e-3))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            pick = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(model(x[pick]), y[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def cached_code_classifier(path: str | Path, codes: np.ndarray, labels: np.ndarray, n_emotions: int,
                           **training) -> CodeClassifier:
    """train_code_classifier's model, loaded from `path` when it was trained there on exactly these windows, labels
    and settings (a fingerprint of all of them is stored with the weights); trained and saved (atomically)
    otherwise (also when the file predates the stored width)."""
    fingerprint = hashlib.sha256()
    for array in (codes, labels, training.get("baseline")):
        if array is not None:
            fingerprint.update(np.ascontiguousarray(array, np.float32).tobytes())
    fingerprint.update(repr((n_emotions, sorted((k, v) for k, v in training.items() if k != "baseline"))).encode())
    key, path = fingerprint.hexdigest(), Path(path)
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("key") == key and "hidden" in saved:
            model = CodeClassifier(codes.shape[2], n_emotions, saved["hidden"])
            model.load_state_dict(saved["state"])
            return model.eval()
    model = train_code_classifier(codes, labels, n_emotions, **training)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temp:
        torch.save({"key": key, "hidden": model.gru.hidden_size, "state": model.state_dict()}, temp)
    return model
