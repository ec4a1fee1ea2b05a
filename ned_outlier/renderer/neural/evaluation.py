"""How well a trained renderer re-renders frames it never saw: the held-out end of the actor's video, each frame
generated from its own fitted mesh (frame after frame, as at edit time), compared with the real crop.

    scores, strip = held_out_scores(loaded, frames, range(377, 472))   # {"psnr": ..., "ssim": ..., "frames": ...}

The renderer generates the face only (as NED's, black where the mesh does not reach; the rest of the frame is the
source's), so both measures compare the face, over the pixels the mesh covers: PSNR in dB, and the mean of the SSIM map
(11-pixel Gaussian window, sigma 1.5, Wang et al. 2004, RGB in [0, 1]) between the generated crop and the real crop
with everything outside the face set to black in both.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from kornia.metrics import ssim
from tqdm import tqdm

from ned_outlier.renderer.neural.checkpoint import LoadedRenderer
from ned_outlier.renderer.neural.conditioning import ConditioningTopology
from ned_outlier.renderer.neural.data import ActorFrames
from ned_outlier.renderer.neural.inference import NeuralFaceRenderer, to_image


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of uint8 images a, b (H, W, 3) over the pixels where mask (H, W) is true (all without one):
    10 log10(255^2 / MSE); inf when they are equal."""
    difference = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = difference[mask].mean() if mask is not None else difference.mean()
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def structural_similarity(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM of uint8 RGB images a, b (H, W, 3), 11-pixel Gaussian window, its map averaged over the pixels where
    mask (H, W) is true (all without one)."""
    as_tensor = lambda image: torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
    similarity = ssim(as_tensor(a), as_tensor(b), window_size=11)[0].mean(dim=0).numpy()
    return float(similarity[mask].mean() if mask is not None else similarity.mean())


def held_out_scores(loaded: LoadedRenderer, frames: ActorFrames, span: range, examples: int = 4,
                    progress: bool = True, topology: ConditioningTopology | None = None
                    ) -> tuple[dict[str, float], np.ndarray | None]:
    """Mean face PSNR and SSIM over the face frames of `span`, their count, and a strip image: `examples` evenly
    spaced frames, real crops above generated ones ((2 S, examples S, 3) uint8; None without face frames).
    `topology`: of the frames' meshes (None: the checkpoint backend's, see NeuralFaceRenderer)."""
    renderer = NeuralFaceRenderer(loaded, topology=topology)
    scores: dict[str, list[float]] = {"psnr": [], "ssim": []}
    shown = set(np.linspace(span.start, span.stop - 1, examples).round().astype(int).tolist())
    strip = []
    for index in tqdm(span, desc="held-out frames", unit="frame", disable=not progress):
        if not frames.found[index]:
            renderer.reset()
            continue
        frame, mask = renderer.generate(frames.vertices[index])
        generated, face = to_image(frame), mask.cpu().numpy()
        real = np.where(face[..., None], np.asarray(frames.crops[index]), 0).astype(np.uint8)
        scores["psnr"].append(psnr(generated, real, face))
        scores["ssim"].append(structural_similarity(generated, real, face))
        if index in shown:
            strip.append(np.concatenate([np.asarray(frames.crops[index]), generated], axis=0))
    means = {name: float(np.mean(values)) for name, values in scores.items() if values}
    means["frames"] = len(scores["psnr"])
    return means, np.concatenate(strip, axis=1) if strip else None
