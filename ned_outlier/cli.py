"""Shared plumbing of the command-line scripts: one-line errors and non-zero exits instead of tracebacks."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from ned_outlier.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def run_cli(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> int:
    """Run `main(argv)`; a UserError prints `error: <message>` on stderr and returns exit code 2.

    Anything else is a bug in this project and keeps its traceback.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never hang on model-hub retries: nothing is downloaded here
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # a line per file of every saved training state
    try:
        main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


@contextmanager
def logger_level(name: str, level: int) -> Iterator[None]:
    """Set logger `name` to `level` for the duration of the block, then restore it (scripts' mains run in-process in
    tests, so a level set for one run must not leak into the next)."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def add_training_arguments(parser, configs: str, example: str) -> None:
    """--config (a training YAML under `configs`), --set KEY=VALUE (repeatable) and --output-dir."""
    from pathlib import Path

    parser.add_argument("--config", type=Path, required=True, help=f"training YAML ({configs})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config entry, e.g. {example} (repeatable)")
    parser.add_argument("--output-dir", help="shorthand for --set train.output_dir=DIR")


def training_overrides(args) -> list[str]:
    """The --set overrides with --output-dir added."""
    return args.overrides + ([f"train.output_dir={args.output_dir}"] if args.output_dir else [])


# The reconstruction flags of edit.py, reconstruct.py and app.py: flag -> the reconstruction YAML key it overrides.
RECONSTRUCTION_FLAGS = {"--backend": "backend", "--deca-model": "flame.deca_model",
                        "--emoca-model": "flame.emoca_model", "--flame-model": "flame.flame_model",
                        "--landmark-embedding": "flame_fit.landmark_embedding"}


def add_reconstruction_arguments(parser) -> None:
    """--backend and the FLAME backends' files (--deca-model, --emoca-model, --flame-model, --landmark-embedding),
    which override the reconstruction YAML's `backend`, `flame.*` and `flame_fit.landmark_embedding` (and the
    DECA_MODEL_PATH, EMOCA_MODEL_PATH, FLAME_MODEL_PATH, FLAME_LANDMARK_EMBEDDING_PATH environment variables)."""
    group = parser.add_argument_group("reconstruction backend (default: the reconstruction YAML's)")
    group.add_argument("--backend", choices=("mediapipe-au", "flame-deca", "flame-emoca", "flame-fit"),
                       help="mediapipe-au: offline, packaged models; flame-deca / flame-emoca: NED's DECA (EMOCA) + "
                            "FLAME, from your own files (docs/reconstruction.md); flame-fit: FLAME fitted to the "
                            "face mesh's landmarks, from your FLAME file and DECA's landmark embedding")
    group.add_argument("--deca-model", help="DECA's deca_model.tar (config flame.deca_model)")
    group.add_argument("--emoca-model", help="an EMOCA checkpoint .ckpt or its folder (config flame.emoca_model)")
    group.add_argument("--flame-model", help="FLAME 2020's generic_model.pkl (config flame.flame_model)")
    group.add_argument("--landmark-embedding",
                       help="DECA's landmark_embedding.npy: flame-fit's landmarks, and the eyes a neural renderer "
                            "of FLAME meshes draws (config flame_fit.landmark_embedding)")


def _given_reconstruction_flags(args) -> dict[str, str]:
    values = {flag: getattr(args, flag[2:].replace("-", "_")) for flag in RECONSTRUCTION_FLAGS}
    return {flag: value for flag, value in values.items() if value is not None}


def reconstruction_overrides(args) -> dict[str, str]:
    """The config overrides (for ned_outlier.config.replace_fields) of the reconstruction flags given."""
    return {RECONSTRUCTION_FLAGS[flag]: value for flag, value in _given_reconstruction_flags(args).items()}


def reconstruction_options(args) -> list[str]:
    """The reconstruction flags given, as arguments for a sub-process of the same script."""
    return [part for flag, value in _given_reconstruction_flags(args).items() for part in (flag, value)]
