#!/usr/bin/env python
"""Quality of edits of the Pexels clip, measured with models this project does not tune the editor for.

For each target emotion and each renderer (warp alone; warp + mouth retrieval) and mouth mode (keep; edit):
  target rate  fraction of face frames whose top class under fer's FER2013 mini-Xception is the target,
               for the edited clip and for the source clip;
  identity     mean dlib 128-D embedding distance between source and edited frames (same person < 0.6);
  mouth r      (--mouth keep) Pearson r between the source's and the edited clip's inner-lip opening, the edited
               clip being reconstructed from scratch.
Prints a Markdown table and writes it with the raw numbers (JSON) under --out.

    python benchmarks/edit_quality.py [--emotions happy,sad] [--out out/quality]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.assets import asset_path  # noqa: E402
from ned_outlier.io.video import VideoReader  # noqa: E402
from ned_outlier.pipeline import edit_video, load_edit_config  # noqa: E402
from ned_outlier.reconstruction.params import FaceParams  # noqa: E402
from ned_outlier.reconstruction.reconstructor import reconstruct  # noqa: E402
from ned_outlier.reconstruction.topology import inner_lip_opening  # noqa: E402
from recognition import create_model  # noqa: E402
from recognition.identity import FaceEmbedder, identity_distance  # noqa: E402

EMOTIONS = ("happy", "sad", "surprised", "angry", "fear", "disgusted", "neutral")


def face_boxes(params: FaceParams, margin: float = 0.1) -> np.ndarray:
    """(T, 4) square boxes around the face mesh (NaN without a face), `margin` of the side added on each side."""
    points = params.landmarks[:, :468, :2]
    low, high = np.nanmin(points, axis=1), np.nanmax(points, axis=1)
    centre, side = (low + high) / 2, (high - low).max(axis=1, keepdims=True) * (1 + 2 * margin)
    return np.concatenate([centre - side / 2, centre + side / 2], axis=1)


def crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = np.round(box).astype(int)
    height, width = frame.shape[:2]
    return frame[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]


def measure_video(video: Path, boxes: np.ndarray, found: np.ndarray, classifier, embedder: FaceEmbedder,
                  reference_embeddings: dict | None, every: int = 4) -> dict:
    """Top-class labels of every face frame, and (every `every`-th face frame) identity embeddings or distances."""
    labels, embeddings = [], {}
    for index, frame in enumerate(VideoReader(video)):
        if index >= len(found) or not found[index]:
            continue
        probabilities = classifier.predict_proba([crop(frame, boxes[index])])[0]
        labels.append(classifier.labels[int(np.argmax(probabilities))])
        if index % every == 0:
            embeddings[index] = embedder.embed(frame, tuple(boxes[index]))
    result = {"labels": labels, "embeddings": embeddings}
    if reference_embeddings is not None:
        result["identity"] = float(np.mean([identity_distance(embeddings[i], reference_embeddings[i])
                                            for i in embeddings]))
    return result


def lip_opening(params: FaceParams) -> np.ndarray:
    return inner_lip_opening(params.landmarks) / params.scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emotions", default=",".join(EMOTIONS), help="comma-separated targets (default: all 7)")
    parser.add_argument("--video", type=Path, default=None, help="source clip (default: the Pexels clip)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "quality", help="folder for videos and results")
    args = parser.parse_args()
    video = args.video or asset_path("pexels_video")
    args.out.mkdir(parents=True, exist_ok=True)
    config = load_edit_config()
    params = reconstruct(video, progress=False)
    boxes = face_boxes(params)
    classifier = create_model("fer2013-minixception")
    embedder = FaceEmbedder()
    source = measure_video(video, boxes, params.face_found, classifier, embedder, None)
    source_opening = lip_opening(params)

    rows = []
    for emotion in args.emotions.split(","):
        source_rate = float(np.mean([label == emotion for label in source["labels"]]))
        for renderer, retrieval in (("warp", False), ("warp + mouth retrieval", True)):
            for mouth in ("keep", "edit"):
                edit_config = dataclasses.replace(config, mouth=dataclasses.replace(config.mouth, enabled=retrieval))
                out = args.out / f"{emotion}_{'mouth' if retrieval else 'warp'}_{mouth}.mp4"
                report = edit_video(video, out, edit_config, emotion=emotion, mouth=mouth, params=params,
                                    progress=False)
                edited = measure_video(out, boxes, params.face_found, classifier, embedder, source["embeddings"])
                row = {
                    "emotion": emotion, "renderer": renderer, "mouth": mouth,
                    "target_rate_edited": float(np.mean([label == emotion for label in edited["labels"]])),
                    "target_rate_source": source_rate,
                    "identity_distance": edited["identity"],
                    "mouth_from_donor": report.mouth_from_donor / max(report.edited, 1),
                    "fold_limited": report.fold_limited / max(report.edited, 1),
                }
                if mouth == "keep":
                    again = reconstruct(out, progress=False)
                    both = params.face_found & again.face_found
                    row["mouth_r"] = float(np.corrcoef(source_opening[both], lip_opening(again)[both])[0, 1])
                rows.append(row)
                print(json.dumps(row), flush=True)

    lines = ["| target | renderer | mouth | target rate edited | target rate source | identity dist. | mouth r |"
             " donor mouths | fold-limited |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mouth_r = f"{r['mouth_r']:.3f}" if "mouth_r" in r else "-"
        lines.append(f"| {r['emotion']} | {r['renderer']} | {r['mouth']} | {r['target_rate_edited']:.2f} | "
                     f"{r['target_rate_source']:.2f} | {r['identity_distance']:.3f} | {mouth_r} | "
                     f"{r['mouth_from_donor']:.2f} | {r['fold_limited']:.2f} |")
    table = "\n".join(lines)
    print(table)
    (args.out / "quality.md").write_text(table + "\n")
    (args.out / "quality.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
