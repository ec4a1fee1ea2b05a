#!/usr/bin/env python
"""What the output encoder keeps of the face's detail, at what size and time: both packaged clips decoded and
encoded again by VideoWriter (libx264, as an edit's output is written) at several crf / preset settings. Prints,
per clip and setting, the face sharpness (mean |Laplacian| inside the face, re-encoded / source, averaged over the
face frames, as benchmarks/edit_quality.py measures it), the file size (video only) and the encoding time.
The edit's own setting is `encoder` in configs/edit/default.yaml.

    python benchmarks/encoder.py [--settings 18:veryfast,16:veryfast,15:veryfast,18:medium,16:medium]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.assets import asset_path  # noqa: E402
from ned_outlier.face.finder import FaceFinder  # noqa: E402
from ned_outlier.io.video import EncoderConfig, VideoReader, VideoWriter  # noqa: E402
from recognition.edit_measures import face_region, grey, laplacian_energy  # noqa: E402

CLIPS = {"webcam": "single_face_video", "pexels": "pexels_video"}
DEFAULT_SETTINGS = "18:veryfast,16:veryfast,15:veryfast,18:medium,16:medium"


def parse_settings(text: str) -> list[EncoderConfig]:
    """"18:veryfast,16:medium" -> [EncoderConfig(18, "veryfast"), EncoderConfig(16, "medium")]."""
    settings = []
    for item in text.split(","):
        crf, _, preset = item.partition(":")
        settings.append(EncoderConfig(int(crf), preset or "veryfast"))
    return settings


def face_sharpness(frames: list[np.ndarray], regions: list[np.ndarray | None]) -> list[float | None]:
    """Per frame the face's mean |Laplacian| (None where no face was found)."""
    return [None if region is None else laplacian_energy(grey(frame), region) for frame, region in zip(frames, regions)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help="comma-separated crf:preset pairs")
    args = parser.parse_args(argv)
    settings = parse_settings(args.settings)
    finder = FaceFinder()
    print("| clip | crf | preset | face sharpness (re-encode / source) | MB | encoding s |")
    print("|---|---|---|---|---|---|")
    for clip, asset in CLIPS.items():
        reader = VideoReader(asset_path(asset))
        info, frames = reader.info, list(reader)  # the packaged clips are short (at most 472 frames)
        regions = [None if mesh is None else face_region(mesh[:468, :2], frame.shape)
                   for frame, mesh in finder.image_landmarks(frames)]
        source = face_sharpness(frames, regions)
        with tempfile.TemporaryDirectory() as folder:
            for encoder in settings:
                out = Path(folder) / f"{encoder.crf}_{encoder.preset}.mp4"
                start = time.perf_counter()
                with VideoWriter(out, info.fps, info.width, info.height, encoder=encoder) as writer:
                    for frame in frames:
                        writer.write(frame)
                seconds = time.perf_counter() - start
                encoded = face_sharpness(list(VideoReader(out)), regions)
                ratio = np.mean([e / s for e, s in zip(encoded, source) if s is not None])
                print(f"| {clip} | {encoder.crf} | {encoder.preset} | {ratio:.3f} | {out.stat().st_size / 1e6:.2f} | "
                      f"{seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
