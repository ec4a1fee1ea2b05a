#!/usr/bin/env python
"""How much face detail the warp's resampling keeps, and what it costs: frames of both packaged clips resampled by
cv2.remap's kernels and by the warp's own (`ned_outlier.renderer.warp.resample`: 2x windowed-sinc upsampling, then
bicubic), at a uniform quarter- and half-pixel shift and under a smooth random field of up to 4 px. Prints, per
resampler, the sharpness ratio (mean |Laplacian| over the face, resampled / source, as benchmarks/edit_quality.py
measures it, before any encoding) and the milliseconds per 300 x 300 region. The first row is the ideal band-limited
shift (the Fourier shift theorem; uniform shifts only): what a perfect resampler gives. It is not 1: the measure
weighs the content near the sampling limit, which a sub-pixel shift redistributes.

    python benchmarks/resampling.py [--frames 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.assets import asset_path  # noqa: E402
from ned_outlier.face.finder import FaceFinder  # noqa: E402
from ned_outlier.io.video import VideoReader  # noqa: E402
from ned_outlier.renderer.warp import resample  # noqa: E402
from recognition.edit_measures import face_region, grey, laplacian_energy  # noqa: E402

CLIPS = {"webcam": "single_face_video", "pexels": "pexels_video"}
MAX_FIELD = 4.0  # pixels
FIELD_SIGMA = 30.0  # pixels: the random field's smoothness


def remapper(interpolation: int):
    return lambda image, map_x, map_y: cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)


RESAMPLERS = {"bilinear": remapper(cv2.INTER_LINEAR), "bicubic": remapper(cv2.INTER_CUBIC),
              "Lanczos-4": remapper(cv2.INTER_LANCZOS4), "warp (2x sinc, bicubic)": resample}


def fourier_shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """image (H, W, C) uint8 shifted by (dx, dy) pixels as a band-limited periodic signal, rounded to uint8."""
    height, width = image.shape[:2]
    phase = np.exp(2j * np.pi * (np.fft.fftfreq(width)[None, :] * dx + np.fft.fftfreq(height)[:, None] * dy))
    spectrum = np.fft.fft2(image.astype(np.float64), axes=(0, 1)) * phase[:, :, None]
    return np.clip(np.rint(np.fft.ifft2(spectrum, axes=(0, 1)).real), 0, 255).astype(np.uint8)


def smooth_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(2, H, W) float32 displacement, smooth over FIELD_SIGMA pixels, at most MAX_FIELD pixels."""
    field = np.stack([cv2.GaussianBlur(rng.normal(size=shape).astype(np.float32), (0, 0), FIELD_SIGMA)
                      for _ in range(2)])
    return field * (MAX_FIELD / np.abs(field).max())


def displacements(shape: tuple[int, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"1/4 px": np.full((2, *shape), 0.25, np.float32), "1/2 px": np.full((2, *shape), 0.5, np.float32),
            f"smooth field <= {MAX_FIELD:g} px": smooth_field(shape, rng)}


def face_frames(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frame, face region) for `count` evenly spread frames of each packaged clip where the mesh finds the face."""
    finder, frames = FaceFinder(), []
    for asset in CLIPS.values():
        reader = VideoReader(asset_path(asset))
        step = max(reader.info.frame_count // count, 1)
        images = list(islice(reader, 0, None, step))[:count]
        for image, mesh in finder.image_landmarks(images):
            if mesh is not None:
                frames.append((image, face_region(mesh[:468, :2], image.shape)))
    return frames


def milliseconds(function, image: np.ndarray, runs: int = 20) -> float:
    region = np.ascontiguousarray(image[:300, :300])
    map_x, map_y = np.meshgrid(np.arange(300, dtype=np.float32) + 0.3, np.arange(300, dtype=np.float32) + 0.3)
    function(region, map_x, map_y)
    start = time.perf_counter()
    for _ in range(runs):
        function(region, map_x, map_y)
    return (time.perf_counter() - start) / runs * 1000


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=5, help="frames per clip")
    parser.add_argument("--seed", type=int, default=0, help="of the random fields")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    frames = face_frames(args.frames)
    fields = [displacements(image.shape[:2], rng) for image, _ in frames]
    print(f"{len(frames)} face frames of the packaged clips; sharpness resampled / source (mean over the frames)\n")
    print("| resampler | " + " | ".join(fields[0]) + " | ms per 300 x 300 |")
    print("|---|" + "---|" * (len(fields[0]) + 1))
    sources = [laplacian_energy(grey(image), region) for image, region in frames]
    ideal = [np.mean([laplacian_energy(grey(fourier_shift(image, shift, shift)), region) / source
                      for (image, region), source in zip(frames, sources)]) for shift in (0.25, 0.5)]
    print(f"| ideal (Fourier shift) | {ideal[0]:.3f} | {ideal[1]:.3f} | - | - |")
    for name, function in RESAMPLERS.items():
        ratios = {shift: [] for shift in fields[0]}
        for (image, region), source, moves in zip(frames, sources, fields):
            height, width = image.shape[:2]
            xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
            for shift, (dx, dy) in moves.items():
                moved = function(image, xs + dx, ys + dy)
                ratios[shift].append(laplacian_energy(grey(moved), region) / source)
        cells = " | ".join(f"{np.mean(values):.3f}" for values in ratios.values())
        print(f"| {name} | {cells} | {milliseconds(function, frames[0][0]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
