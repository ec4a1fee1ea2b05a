"""What every recognition model answers: `.labels`, `.preprocess(face)` and `predict_proba(faces)`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class ImageClassifier:
    """Mixin for an nn.Module whose forward maps a preprocessed batch to logits (N, C) in the order of `labels`,
    and whose `preprocess` maps one RGB uint8 face crop (H, W, 3) to a tensor (C_in, H', W')."""

    labels: tuple[str, ...]

    @torch.inference_mode()
    def predict_proba(self, images: Sequence[np.ndarray] | torch.Tensor) -> np.ndarray:
        """Class probabilities (N, C) float32 for N RGB uint8 face crops or an already preprocessed batch."""
        was_training = self.training
        self.eval()
        batch = images if isinstance(images, torch.Tensor) else torch.stack([self.preprocess(f) for f in images])
        device = next(self.parameters()).device
        probabilities = torch.softmax(self(batch.to(device)), dim=1).float().cpu().numpy()
        self.train(was_training)
        return probabilities
