#!/usr/bin/env python
"""Make SynthMEAD: MEAD-layout emotional talking clips animated from real face photos, with controlled outliers
(neutral onsets/offsets, weakly expressed clips, wrong labels) whose ground truth goes into truth.csv.

    python scripts/make_synthmead.py --out out/synthmead                    # the default set (a few minutes on CPU)
    python scripts/score_outliers.py out/synthmead --out out/synthmead_lambda

Writes OUT/<actor>/video/front/<emotion>/level_<n>/<id>.mp4 (one actor per identity: S001, S002, ...) and
OUT/truth.csv (written last). The same config gives the same clips.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import logger_level, run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "ned" / "synthmead.yaml"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder of the set")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="default: %(default)s")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a set already in --out (a folder that holds anything else is never deleted)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from ned_outlier.data.synthmead import build_synthmead, load_synth_config, require_set

    config = load_synth_config(args.config)
    if args.out.exists() and any(args.out.iterdir()):
        if not args.overwrite:
            raise UserError(f"{args.out} is not empty; pass --overwrite to replace it")
        require_set(args.out)  # --overwrite deletes a SynthMEAD set only, never a folder of something else
        import shutil

        shutil.rmtree(args.out)
    start = time.perf_counter()
    # A photo's cut-out may show a neighbour's face too; the build checks that the centre face is the one fitted.
    with logger_level("ned_outlier.reconstruction.reconstructor", logging.WARNING):
        built = build_synthmead(config, args.out, progress=not args.quiet)
    truths = built.truths
    kinds = Counter(truth.kind for truth in truths)
    actors = len({truth.actor for truth in truths})
    print(f"{len(truths)} clips of {actors} identities in {time.perf_counter() - start:.0f} s: "
          + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    if built.skipped:
        print(f"left out {len(built.skipped)} source faces:")
        for identity, reason in built.skipped:
            print(f"  {identity}: {reason}")
    print(f"wrote {args.out} (truth.csv)")


if __name__ == "__main__":
    sys.exit(run_cli(main))
