"""A trained NED manipulator applied to a whole video's codes.

    ned = NedManipulator("runs/ned_synthmead/model.safetensors", seed=0)
    target = ned.target_codes(params, emotion="sad")                  # label-driven: a style from a seeded z
    target = ned.target_codes(params, reference=reference_params)    # reference-driven

Label-driven edits take the style mapping(z, emotion) of one latent z drawn from N(0, I) with the seed; reference-
driven edits take the geometric median of the style encoder's codes of every window of the reference clip (NED's
test.py). The generator translates every 10-frame window (hop 1) of each run of face frames, and the windows are
overlap-added with Gaussian weights (NED: cv2.getGaussianKernel(10, -1)). NED leaves the weights
unnormalised, which sums to 1 only where ten windows overlap, and pastes the first and last windows' raw outputs
over the clip's edges; here each frame's sum is divided by its total weight, which is the same in the interior and
a weighted average at the edges. A run shorter than a window is translated as one shorter window.
The mouth code is the source's with mouth="keep" (speech), the generator's with "edit"; `intensity` moves the source
codes that fraction of the way to the translation.

A checkpoint trained relative_to_neutral needs the person's neutral code (C,): pass `neutral` (e.g. the mean code
of a clip of the person at rest); without it, it is estimated as the per-component median of the clip's own codes
(estimated_neutral_code), which assumes the face is near its resting state most of the time, as in talking footage.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ned_outlier.data.ned_windows import clip_codes
from ned_outlier.errors import UserError
from ned_outlier.manipulator.facs import MOUTH_MODES, TargetCodes
from ned_outlier.manipulator.ned.checkpoint import load_ned
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.reconstructor import true_runs

WINDOW = 10


def gaussian_window(length: int) -> np.ndarray:
    """(length,) NED's overlap-add weights: cv2.getGaussianKernel(length, -1) (sigma from the length, sum 1)."""
    return cv2.getGaussianKernel(length, -1)[:, 0]


def geometric_median(points: np.ndarray, iterations: int = 200, tolerance: float = 1e-7) -> np.ndarray:
    """(N, D) -> (D,) the point minimising the summed Euclidean distance (Weiszfeld's algorithm)."""
    median = points.mean(axis=0)
    for _ in range(iterations):
        distances = np.maximum(np.linalg.norm(points - median, axis=1), 1e-12)
        updated = (points / distances[:, None]).sum(axis=0) / (1 / distances).sum()
        if np.linalg.norm(updated - median) < tolerance:
            return updated
        median = updated
    return median


def window_starts_of(length: int, window: int) -> list[int]:
    """Starts of the hop-1 windows over a run of `length` frames (one window when the run is shorter)."""
    return list(range(max(length - window + 1, 1)))


def estimated_neutral_code(params: FaceParams) -> np.ndarray:
    """(C,) the per-component median code over the frames with a face: the person's resting code where the face
    rests most of the time; UserError without a face."""
    codes = clip_codes(params)[params.face_found]
    if not len(codes):
        raise UserError("no frame with a face to estimate the neutral code from")
    return np.median(codes, axis=0)


class NedManipulator:
    """Edits the codes of FaceParams with a trained checkpoint (ned/checkpoint.py)."""

    def __init__(self, checkpoint: str | Path, seed: int = 0, device: str = "cpu"):
        self.nets, self.schema, self.emotions = load_ned(checkpoint)
        self.nets.to(device)
        self.checkpoint, self.seed, self.device = Path(checkpoint), seed, device

    @torch.no_grad()
    def emotion_style(self, emotion: str, seed: int | None = None) -> torch.Tensor:
        """(1, S) style of `emotion` from the latent drawn with `seed` (default: the manipulator's); UserError when
        the checkpoint has no such head."""
        if emotion not in self.emotions:
            raise UserError(f"the NED checkpoint {self.checkpoint} knows {', '.join(self.emotions)}, not {emotion!r}")
        generator = torch.Generator().manual_seed(self.seed if seed is None else seed)
        z = torch.randn(1, self.nets.config.latent_dim, generator=generator)
        return self.nets.mapping(z.to(self.device), torch.tensor([self.emotions.index(emotion)], device=self.device))

    def _neutral(self, params: FaceParams, neutral: np.ndarray | None) -> torch.Tensor | None:
        """(1, C) the person's neutral code for networks that read codes relative to it (given, or estimated from
        the clip), None for the others."""
        if not self.nets.relative_to_neutral:
            return None
        code = estimated_neutral_code(params) if neutral is None else np.asarray(neutral, np.float32)
        return torch.from_numpy(code.astype(np.float32)[None]).to(self.device)

    @torch.no_grad()
    def reference_style(self, reference: FaceParams, neutral: np.ndarray | None = None) -> torch.Tensor:
        """(1, S) geometric median of the style codes of the reference's windows (neutral: the reference person's
        (C,) neutral code, see the module's docstring)."""
        self.schema.require_same(reference.schema, "the reference clip's reconstruction")
        codes = clip_codes(reference)
        windows = [codes[run[start:start + WINDOW]] for run in true_runs(reference.face_found)
                   for start in window_starts_of(len(run), WINDOW)]
        if not windows:
            raise UserError("the reference clip shows no face")
        person = self._neutral(reference, neutral)
        styles = [self.nets.encode_style(torch.from_numpy(w[None]).to(self.device), person)[0].cpu().numpy()
                  for w in windows]
        return torch.from_numpy(geometric_median(np.stack(styles))[None]).float().to(self.device)

    @torch.no_grad()
    def translate(self, params: FaceParams, style: torch.Tensor, neutral: np.ndarray | None = None) -> np.ndarray:
        """(T, C) translated codes (mouth first), Gaussian overlap-add over each run's windows; NaN without a face.
        neutral: the person's (C,) neutral code (see the module's docstring)."""
        codes = clip_codes(params)
        person = self._neutral(params, neutral)
        output = np.full_like(codes, np.nan)
        for run in true_runs(params.face_found):
            length = min(WINDOW, len(run))
            weights = gaussian_window(length)[:, None]
            total, summed = np.zeros((len(run), 1)), np.zeros((len(run), codes.shape[1]))
            starts = window_starts_of(len(run), WINDOW)
            for chunk in range(0, len(starts), 256):
                batch = np.stack([codes[run[s:s + length]] for s in starts[chunk:chunk + 256]])
                fake = self.nets.translate(torch.from_numpy(batch).to(self.device), style.expand(len(batch), -1),
                                           None if person is None else person.expand(len(batch), -1)).cpu().numpy()
                for s, window in zip(starts[chunk:chunk + 256], fake):
                    summed[s:s + length] += weights * window
                    total[s:s + length] += weights
            output[run] = summed / total
        return output

    def target_codes(self, params: FaceParams, emotion: str | None = None, reference: FaceParams | None = None,
                     intensity: float = 1.0, mouth: str = "keep", neutral: np.ndarray | None = None) -> TargetCodes:
        """The edit's target codes for exactly one of an emotion or a reference clip's reconstruction (neutral: the
        person's (C,) neutral code, see the module's docstring)."""
        if (emotion is None) == (reference is None):
            raise UserError("give exactly one of an emotion or a reference clip")
        if mouth not in MOUTH_MODES:
            raise UserError(f"mouth must be one of {', '.join(MOUTH_MODES)}, got {mouth!r}")
        params.schema.require_same(self.schema, f"the NED checkpoint {self.checkpoint}")
        style = self.emotion_style(emotion) if emotion is not None else self.reference_style(reference)
        source = clip_codes(params)
        target = source + intensity * (self.translate(params, style, neutral) - source)
        mouth_dims = len(self.schema.mouth_names)
        target_mouth = params.mouth if mouth == "keep" else target[:, :mouth_dims]
        return TargetCodes(target[:, mouth_dims:].astype(np.float32), np.asarray(target_mouth, np.float32))
