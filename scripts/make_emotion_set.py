#!/usr/bin/env python
"""Build a labelled synthetic emotion set by editing real faces to every emotion with the editor (scripts/edit.py's
edit), for training the recognition models without the real datasets: train on some identities, test on others.

    python scripts/make_emotion_set.py --out out/emotion_set                # the default set, a few minutes on CPU
    python scripts/make_emotion_set.py --out out/emotion_set8 --classes 8   # contempt too

Every face of the config's sources is an identity (the Pexels woman, the single_face man, each person of the group
photo, the astronaut, each LFW image); a video gives several frames spread over the clip (drawn with --seed).
Each frame is edited to each emotion at each intensity and cropped square around the face. The label is the edit's
target, not what the source shows: the warp moves the face's geometry but keeps its texture, so a toothy smile
edited to `sad` still shows teeth. Writes

    OUT/{train,test}/<label>/<identity>_<frame>_<intensity>.png   (class per folder: data layout `folders`)
    OUT/manifest.csv          path, label, identity, split, source, frame, intensity (written last)
    OUT/contact_sheet.png     one identity (--sheet) across the classes

The test split holds the config's test_identities; no identity is in both. Faces the reconstructor cannot fit
are skipped and counted. The same config and seed give the same files, byte for byte.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import logger_level, run_cli  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "recognition" / "synthetic_set.yaml"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder of the set (made if missing)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="sources, test identities, intensities, crop (default: %(default)s)")
    parser.add_argument("--seed", type=int, help="frame draw seed (default: the config's)")
    parser.add_argument("--classes", type=int, choices=(7, 8),
                        help="7: the basic emotions incl. neutral; 8: and contempt (default: the config's emotions)")
    parser.add_argument("--sheet", help="identity drawn into contact_sheet.png (default: the first test identity)")
    parser.add_argument("--overwrite", action="store_true", help="replace a set already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def overrides(args) -> dict:
    """Config entries set on the command line."""
    from ned_outlier.labels import EMOTIONS

    values = {}
    if args.seed is not None:
        values["seed"] = args.seed
    if args.classes is not None:
        values["emotions"] = list(EMOTIONS[: args.classes])
    return values


def report(summary, seconds: float) -> str:
    """Images per split and class, identities per split, skipped faces, wall time."""
    counts = summary.counts()
    labels = sorted({label for table in counts.values() for label in table})
    lines = ["split  " + " ".join(f"{label:>9s}" for label in labels) + "    total"]
    for split, table in sorted(counts.items(), reverse=True):
        lines.append(f"{split:6s} " + " ".join(f"{table.get(label, 0):9d}" for label in labels)
                     + f" {sum(table.values()):8d}")
    for split, identities in summary.identities().items():
        lines.append(f"{split} identities ({len(identities)}): {', '.join(identities)}")
    lines.append(f"skipped faces: {len(summary.skipped)}")
    lines += [f"  {identity}: {reason}" for identity, reason in summary.skipped]
    lines.append(f"{len(summary.rows)} images in {seconds:.0f} s")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    from ned_outlier.io.image import write_image
    from recognition.data.synthetic import build_emotion_set, contact_sheet, load_set_config

    config = load_set_config(args.config, overrides(args))
    # A photo's cut-out may show a neighbour's face too; the build itself checks that the centre face is fitted.
    with logger_level("ned_outlier.reconstruction.reconstructor", logging.WARNING):
        summary = build_emotion_set(config, args.out, overwrite=args.overwrite, progress=not args.quiet)
    identities = summary.identities()
    sheet = args.sheet or next(iter(identities["test"] or identities["train"]), None)
    if sheet is not None:
        write_image(args.out / "contact_sheet.png", contact_sheet(args.out, summary.rows, sheet, config.labels))
    print(report(summary, time.perf_counter() - start))
    print(f"wrote {args.out} (manifest.csv{', contact_sheet.png of ' + sheet if sheet else ''})")


if __name__ == "__main__":
    sys.exit(run_cli(main))
