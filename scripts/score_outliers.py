#!/usr/bin/env python
"""Score every clip and 10-frame window of a MEAD-layout dataset for its own emotion label: the outlier weights
lambda of NED training (lambda = 1 if the probability >= 0.6, else the probability).

    python scripts/score_outliers.py data/MEAD --scorer clip --out out/lambda          # CLIP zero-shot (your weights)
    python scripts/score_outliers.py out/synthmead --out out/lambda                    # fer2013-minixception, offline

DATA is <root>/<actor>/video/<view>/<emotion>/level_<n>/<id>.mp4 (MEAD, or SynthMEAD). Each face frame is classified
(the face found and cut as scripts/evaluate.py does); a window's probability is the mean over its frames of its
label's probability. Writes into --out: clips.csv and windows.csv (probability and lambda per clip / window, with
per-class mean probabilities per clip), scores.json (scorer, threshold, counts, fraction down-weighted per class),
hist_<label>.png (the windows' probabilities with the threshold). scripts/train_ned.py reads windows.csv. For
SynthMEAD (a truth.csv in DATA) also truth_detection.json: lambda < 1 as an outlier flag against the truth
(precision, recall, recall per outlier kind, false alarms), printed too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import run_cli  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "ned" / "score_outliers.yaml"
CLIP_CONFIG = REPO / "configs" / "ned" / "score_outliers_clip.yaml"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, metavar="DATA", help="MEAD-layout root folder")
    parser.add_argument("--scorer", help="`clip` (CLIP zero-shot, settings from configs/ned/score_outliers_clip.yaml "
                                         "unless --config is given) or a recognition model name (default: the "
                                         "config's, fer2013-minixception)")
    parser.add_argument("--pretrained", help="the scorer's weights: a file, or for clip an open_clip tag")
    parser.add_argument("--config", type=Path, help=f"scoring YAML (default: {DEFAULT_CONFIG.relative_to(REPO)})")
    parser.add_argument("--actors", help="comma-separated actors (default: the config's; empty: all)")
    parser.add_argument("--out", type=Path, default=Path("out/lambda"), help="output folder (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def scoring_config(args):
    """The config file (CLIP's for --scorer clip without --config) with the command line's choices applied."""
    from dataclasses import replace

    from recognition.outlier_scoring import load_scoring_config

    default = CLIP_CONFIG if args.scorer == "clip" else DEFAULT_CONFIG
    config = load_scoring_config(args.config or default)
    if args.scorer is not None and args.scorer != config.scorer:
        config = replace(config, scorer=args.scorer, options={} if args.config is None else config.options)
    if args.pretrained is not None:
        config = replace(config, pretrained=args.pretrained)
    if args.actors is not None:
        config = replace(config, mead=replace(config.mead, actors=tuple(a for a in args.actors.split(",") if a)))
    return config


def main(argv=None) -> None:
    args = parse_args(argv)
    config = scoring_config(args)
    from ned_outlier.data.mead import scan_mead
    from recognition.outlier_scoring import score_clips, write_scores
    from recognition import create_model
    from ned_outlier.face.finder import FaceFinder

    clips = scan_mead(args.data, config.mead)
    classifier = create_model(config.model_name, pretrained=config.pretrained, **config.options)
    scores = score_clips(clips, classifier, FaceFinder(), config, progress=not args.quiet)
    summary = write_scores(scores, args.data, args.out, config, config.model_name)
    print(f"{summary['clips']} clips, {summary['windows']} windows scored by {config.model_name} "
          f"(threshold {config.threshold:g}); down-weighted: {summary['down_weighted_windows']:.1%} of windows")
    for label, row in summary["per_class"].items():
        print(f"  {label:<10} {row['windows']:6d} windows  {row['down_weighted']:6.1%} down-weighted  "
              f"mean lambda {row['mean_lambda']:.3f}")
    print(f"wrote {args.out}/clips.csv, windows.csv, scores.json, hist_<label>.png")
    if (args.data / "truth.csv").is_file():
        report_truth(args.data, args.out)


def report_truth(root: Path, out: Path) -> None:
    """SynthMEAD knows its outliers: lambda < 1 as an outlier flag against truth.csv, over every actor's emotional
    windows, printed and written to out/truth_detection.json."""
    import json

    from ned_outlier.data.ned_windows import read_lambda_table
    from ned_outlier.data.synthmead import outlier_detection, read_truth
    from ned_outlier.io.atomic import atomic_output

    truths = read_truth(root)
    table = read_lambda_table(out / "windows.csv")
    detection = outlier_detection(table.weights, truths, {truth.actor for truth in truths}, table.window)
    print(f"against {root / 'truth.csv'}: lambda < 1 flags {detection['flagged']} of {detection['windows']} "
          f"emotional windows, {detection['true_outliers']} of them true outliers: precision "
          f"{detection['precision']:.3f}, recall {detection['recall']:.3f}, false alarms on the others "
          f"{detection['false_alarm_rate']:.1%}")
    for kind, row in detection["per_kind"].items():
        print(f"  {kind:<12} recall {row['recall']:.3f} of {row['outlier_windows']} outlier windows")
    print(f"  mean lambda {detection['mean_lambda_outliers']:.3f} on the outliers, "
          f"{detection['mean_lambda_others']:.3f} on the others; a window that is not an outlier weighs more than "
          f"one that is with probability {detection['ranking_auc']:.3f} (0.5: chance)")
    with atomic_output(out / "truth_detection.json") as temp:
        temp.write_text(json.dumps(detection, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(run_cli(main))
