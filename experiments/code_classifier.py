"""A parameter-space emotion classifier: which emotion a window of expression codes shows. The experiment trains it
on clean windows only and uses it as a judge of manipulated sequences, as NED's paper judges with a classifier.

    classifier = train_code_classifier(codes, labels, n_emotions=7, seed=0)   # codes (N, T, C), labels (N,)
    classifier.predict(codes)                                                   # (N,) class indices
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


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
    def predict(self, codes: np.ndarray) -> np.ndarray:
        """(N, T, C) -> (N,) predicted class indices."""
        self.eval()
        return self(torch.from_numpy(np.asarray(codes, np.float32))).argmax(dim=1).numpy()


def train_code_classifier(codes: np.ndarray, labels: np.ndarray, n_emotions: int, seed: int = 0, epochs: int = 60,
                          batch_size: int = 64, lr: float = 3e-3, hidden: int = 64) -> CodeClassifier:
    """Adam with cross-entropy on (N, T, C) windows with (N,) labels; deterministic given the seed."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.asarray(codes, np.float32))
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
