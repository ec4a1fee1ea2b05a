#!/usr/bin/env python
"""Extract RMFER's unlabeled face tracks from multi-person videos (reaction videos: several people watching the
same thing) for the attention-based contrastive learning stage of scripts/train_recognition.py.

    python scripts/extract_face_tracks.py reactions/*.mp4 --out data/face_tracks
    python scripts/train_recognition.py --config configs/recognition/rmfer-efficientnet-b2.yaml \\
        --set data.face_tracks=data/face_tracks

Every face is detected and tracked (MTCNN + IoU tracking, the reconstruction's); each track is a person. Writes
OUT/<video stem>/<person>/<frame>.png (square crops, 260 px) and OUT/<video stem>/tracks.csv (path, person, frame),
the folder complete or not at all; a video whose folder is finished is skipped, so an interrupted run resumes.
A video without a usable track is reported and skipped; it is an error only when no video gives one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "recognition" / "face_tracks.yaml"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="videos with several people")
    parser.add_argument("--out", type=Path, required=True, help="face-track folder (made if missing)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="detector, tracker, crop, frame step (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    stems = [video.stem for video in args.videos]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise UserError(f"two videos are named {repeated[0]!r}: their tracks would share a folder; rename one")
    from recognition.data.face_tracks import extract_face_tracks, load_face_track_config, read_face_tracks

    config = load_face_track_config(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    failures = []
    for video in args.videos:
        if not video.is_file():
            failures.append(f"{video}: no such file")
            continue
        try:
            extract_face_tracks(video, args.out, config, progress=not args.quiet)
        except UserError as error:
            failures.append(str(error))
    for failure in failures:
        print(f"skipped {failure}", file=sys.stderr)
    if len(failures) == len(args.videos):
        raise UserError(f"no face tracks from any of the {len(args.videos)} videos")
    crops = read_face_tracks(args.out)
    for number, name in enumerate(crops.videos):
        mine = crops.video == number
        print(f"{name}: {len(set(crops.person[mine].tolist()))} people, {int(mine.sum())} crops")
    print(f"wrote {args.out}: {len(crops)} crops from {len(crops.videos)} videos")


if __name__ == "__main__":
    sys.exit(run_cli(main))
