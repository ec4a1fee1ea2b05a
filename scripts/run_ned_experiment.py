#!/usr/bin/env python
"""The experiment NED's paper shows only in pictures: NED trained on SynthMEAD with and without the CLIP outlier
weights lambda (same seeds, three each), judged on held-out identities, plus how well lambda finds the outliers
SynthMEAD injected. Prints the README's table and writes OUTPUT_DIR/results.json (an interrupted run resumes) and
the small summary kept in git, docs/results/ned_lambda.json (its finished runs are skipped in a later session, on
the same data and configs; where the same configs make other SynthMEAD clip bytes, on a CPU whose float paths
differ, the runs are made again into OUTPUT_DIR/summary.json and compared with it).

    python scripts/run_ned_experiment.py --jobs 2              # configs/ned/experiment.yaml: everything, hours;
                                                               # two runs at once (one thread each)
    python scripts/run_ned_experiment.py --set "arms=[none]" --set "seeds=[0]" \
        --set output_dir=out/ned_plain --set summary_file=null  # plain NED's learning curve alone (no scoring)
    python scripts/run_ned_experiment.py --report              # the table of docs/results/ned_lambda.json
    python scripts/run_ned_experiment.py --latent-spread 8     # each finished run's first 8 latent draws, one by
                                                               # one (their mean: the run's measure)

SynthMEAD and each scorer's lambda table are made first where they do not exist yet (the same as
`python scripts/make_synthmead.py --out out/synthmead` and `python scripts/score_outliers.py out/synthmead --out
out/synthmead_lambda`); for caption-CLIP, trained here, its emotion set and its training come before its scoring
(scripts/make_emotion_set.py and scripts/train_recognition.py with the configs `scorers` names). Existing ones are
used as they are.

What is measured, and how, is in experiments/outlier_experiment.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from statistics import mean, stdev

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import logger_level, run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "ned" / "experiment.yaml"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="default: %(default)s")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set seeds=[0] (repeatable)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads of this process (default: torch's, one per core). Two processes sharing "
                             "the cores each need --threads 1: with torch's default both ran about ten times "
                             "slower on 2 cores (docs/ned.md)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="train N runs at once, each in its own process of --threads threads (with --jobs, "
                             "default 1, also for making the inputs): on 2 cores --jobs 2 is faster than one run "
                             "after another (docs/ned.md) (default: %(default)s: one run after another)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--report", action="store_true",
                        help="print the table of the config's summary_file (docs/results/ned_lambda.json) and stop")
    parser.add_argument("--latent-spread", type=int, default=None, metavar="K",
                        help="judge every finished run of OUTPUT_DIR/results.json again with each of its first K "
                             "latent draws alone (codes only, no rendering), print the accuracies and stop: how much "
                             "of a run's measure, which averages the config's latent_draws, is its draws")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from experiments.outlier_experiment import (latent_spread, load_experiment_config, local_summary,
                                                prepare_scorers, prepare_synthmead, run_experiment, run_in_parallel,
                                                summary_comparison, summary_table, table)

    config = load_experiment_config(args.config, args.overrides)
    if args.report:
        print(summary_table(config.summary_file))
        return
    if args.latent_spread is not None:
        if args.latent_spread < 1:
            raise UserError(f"--latent-spread must be at least 1, got {args.latent_spread}")
        for key, accuracies in latent_spread(config, args.latent_spread, progress=not args.quiet).items():
            print(f"{key:>26}: {' '.join(f'{a:.3f}' for a in accuracies)}  mean {mean(accuracies):.3f} "
                  f"sd {stdev(accuracies) if len(accuracies) > 1 else 0.0:.3f}")
        return
    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    threads = 1 if args.threads is None and args.jobs > 1 else args.threads
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads must be at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)  # with --jobs also here: the inputs and judge are made as the runs train
    start = time.perf_counter()
    # A photo's cut-out may show a neighbour's face too; SynthMEAD checks that the centre face is the one fitted and
    # its clips are reconstructed as the first face, so the reconstructor's notes about other faces are expected.
    with logger_level("ned_outlier.reconstruction.reconstructor", logging.WARNING):
        made = prepare_synthmead(config, progress=not args.quiet)
        config, reference = local_summary(config)  # the committed runs, made from other clip bytes: compared below
        for folder in made + prepare_scorers(config, progress=not args.quiet):
            print(f"wrote {folder}")
        if args.jobs > 1:
            results = run_in_parallel(config, args.jobs, threads, progress=not args.quiet)
        else:
            results = run_experiment(config, progress=not args.quiet)
    print(table(results))
    if reference is not None:
        print(summary_comparison(results, reference))
    print(f"({time.perf_counter() - start:.0f} s; wrote {Path(config.output_dir) / 'results.json'})")


if __name__ == "__main__":
    sys.exit(run_cli(main))
