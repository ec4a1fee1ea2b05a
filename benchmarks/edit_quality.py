#!/usr/bin/env python
"""Quality of edits of the Pexels clip, measured with models this project does not tune the editor for.

For each target emotion, renderer and mouth mode (keep; edit), the edited clip is judged by the evaluator
(recognition/evaluate.py, as scripts/evaluate.py --target EMOTION --source VIDEO does), every measure taken on the
clip's own face tracks and meshes:
  target rate  fraction of face frames whose top class under fer's FER2013 mini-Xception is the target,
               for the edited clip and for the source clip: over all face frames / over the frames without a
               hand in front of the mouth (FaceParams.mouth_occluded; no renderer here paints over a hand);
  identity     mean dlib 128-D embedding distance between source and edited frames (every 4th; same person < 0.6);
  mouth r      (--mouth keep) Pearson r between the source's and the edited clip's inner-lip opening (in
               inter-ocular distances).
Renderers: warp (the source pixels moved along the mesh), mouth (warp + mouth retrieval, the default of edit.py),
neural (a renderer trained on this actor by scripts/train_renderer.py: --checkpoint). --from-frame N edits and
judges only frames N.. (the held-out end of a clip whose first N frames trained the neural renderer).
Prints a Markdown table and writes it with the raw numbers (JSON) under --out. First, what the classifier says of
the source clip itself (per class: the fraction of face frames whose top class it is, and its highest probability
on any frame): the ceiling for a renderer that draws on the actor's own appearance (--source-only: just that).

    python benchmarks/edit_quality.py [--emotions happy,sad] [--out out/quality]
    python benchmarks/edit_quality.py --renderers mouth,neural --mouth keep --from-frame 378 \
        --checkpoint out/renderer_pexels/renderer.safetensors --out out/quality_neural
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.assets import asset_path  # noqa: E402
from ned_outlier.io.video import VideoReader, VideoWriter  # noqa: E402
from ned_outlier.pipeline import edit_video, load_edit_config  # noqa: E402
from ned_outlier.reconstruction.reconstructor import reconstruct  # noqa: E402
from ned_outlier.renderer.neural.checkpoint import load_renderer  # noqa: E402
from recognition import create_model  # noqa: E402
from recognition.evaluate import FaceFinder, compare_to_source, evaluate_video, summarise  # noqa: E402
from recognition.identity import FaceEmbedder  # noqa: E402

EMOTIONS = ("happy", "sad", "surprised", "angry", "fear", "disgusted", "neutral")


RENDERERS = {"warp": "warp", "mouth": "warp + mouth retrieval", "neural": "neural"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emotions", default=",".join(EMOTIONS), help="comma-separated targets (default: all 7)")
    parser.add_argument("--renderers", default="warp,mouth", help="comma-separated: warp, mouth, neural")
    parser.add_argument("--mouth", default="keep,edit", help="comma-separated mouth modes (default: keep,edit)")
    parser.add_argument("--checkpoint", type=Path, help="renderer.safetensors for the neural renderer")
    parser.add_argument("--from-frame", type=int, default=0, help="edit and judge frames from this one on")
    parser.add_argument("--video", type=Path, default=None, help="source clip (default: the Pexels clip)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "quality", help="folder for videos and results")
    parser.add_argument("--source-only", action="store_true", help="only the classifier on the source clip")
    args = parser.parse_args()
    unknown = set(args.renderers.split(",")) - set(RENDERERS)
    if unknown or ("neural" in args.renderers.split(",")) != (args.checkpoint is not None):
        parser.error(f"renderers are {', '.join(RENDERERS)}; neural needs --checkpoint (and only it)")
    return args


def tail_clip(video: Path, start: int, out: Path) -> Path:
    """Frames start.. of `video` as their own video (no audio: the measures do not use it)."""
    reader = VideoReader(video)
    info = reader.info
    with VideoWriter(out, info.fps, info.width, info.height) as writer:
        for index, frame in enumerate(reader):
            if index >= start:
                writer.write(frame)
    return out


def source_table(summary: dict) -> str:
    """Markdown: per class, the fraction of the source's face frames whose top class it is and its highest
    probability on any of them."""
    lines = ["| class | top class on source frames | highest probability on a source frame |", "|---|---|---|"]
    for label, count in summary["top_class_counts"].items():
        lines.append(f"| {label} | {count / summary['with_face']:.2f} | {summary['max_probabilities'][label]:.2f} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    video = args.video or asset_path("pexels_video")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_frame:
        video = tail_clip(video, args.from_frame, args.out / f"source_from_{args.from_frame}.mp4")
    config = load_edit_config()
    params = reconstruct(video, progress=False)
    neural = load_renderer(args.checkpoint, params.schema) if args.checkpoint else None
    classifier = create_model("fer2013-minixception")
    measure = dict(classifier=classifier, faces=FaceFinder(), embedder=FaceEmbedder())
    source = evaluate_video(video, **measure)
    ceiling = source_table(summarise(source.records, classifier.labels))
    print(ceiling)
    (args.out / "source.md").write_text(ceiling + "\n")
    if args.source_only:
        return

    rows = []
    no_hand = lambda records: [r for r in records if not params.mouth_occluded[r.frame]]  # noqa: E731
    for emotion in args.emotions.split(","):
        source_rate = summarise(source.records, classifier.labels, emotion)["target_rate"]
        source_rate_no_hand = summarise(no_hand(source.records), classifier.labels, emotion)["target_rate"]
        for renderer in args.renderers.split(","):
            for mouth in args.mouth.split(","):
                edit_config = dataclasses.replace(config, mouth=dataclasses.replace(
                    config.mouth, enabled=renderer == "mouth"))
                out = args.out / f"{emotion}_{renderer}_{mouth}.mp4"
                report = edit_video(video, out, edit_config, emotion=emotion, mouth=mouth, params=params,
                                    progress=False, neural_renderer=neural if renderer == "neural" else None)
                edited = evaluate_video(out, **measure)
                comparison = compare_to_source(edited, source)
                rows.append({
                    "emotion": emotion, "renderer": RENDERERS[renderer], "mouth": mouth,
                    "target_rate_edited": summarise(edited.records, classifier.labels, emotion)["target_rate"],
                    "target_rate_edited_no_hand": summarise(no_hand(edited.records), classifier.labels,
                                                            emotion)["target_rate"],
                    "target_rate_source": source_rate,
                    "target_rate_source_no_hand": source_rate_no_hand,
                    "identity_distance": comparison["identity_distance"],
                    "mouth_r": comparison["mouth_r"],
                    "mouth_from_donor": report.mouth_from_donor / max(report.edited, 1),
                    "fold_limited": report.fold_limited / max(report.edited, 1),
                })
                print(json.dumps(rows[-1]), flush=True)

    lines = ["| target | renderer | mouth | target rate edited (all / no hand) | target rate source (all / no hand) |"
             " identity dist. | mouth r | donor mouths | fold-limited |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mouth_r = f"{r['mouth_r']:.3f}" if r["mouth"] == "keep" else "-"
        lines.append(f"| {r['emotion']} | {r['renderer']} | {r['mouth']} | {r['target_rate_edited']:.2f} / "
                     f"{r['target_rate_edited_no_hand']:.2f} | {r['target_rate_source']:.2f} / "
                     f"{r['target_rate_source_no_hand']:.2f} | {r['identity_distance']:.3f} | {mouth_r} | "
                     f"{r['mouth_from_donor']:.2f} | {r['fold_limited']:.2f} |")
    table = "\n".join(lines)
    print(table)
    (args.out / "quality.md").write_text(table + "\n")
    (args.out / "quality.json").write_text(json.dumps(rows, indent=1))

if __name__ == "__main__":
    main()
