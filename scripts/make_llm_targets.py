#!/usr/bin/env python
"""Write Exp-CLIP's training targets: one 4096-d vector per face image, from an instruction-tuned multimodal LLM.

    python scripts/make_llm_targets.py faces/ --blip2 ~/models/blip2-flan-t5-xxl --out faces/targets.safetensors
    python scripts/make_llm_targets.py faces/ --embedder my_llm:embed --recipe encoder-states --llm NAME --out FILE
    python scripts/make_llm_targets.py faces/ --embeddings emb.npy --recipe answer --llm NAME --out FILE

IMAGES are image files or folders (searched recursively, sorted by path). The LLM is yours: no LLM can be had here.
Recipes (recorded in the file; recognition/data/llm_targets.py describes them in full):
  encoder-states  Exp-CLIP's released method: BLIP-2 Flan-T5-XXL reads the image's 32 Q-Former query tokens and
                  the instruction's tokens with its T5 *encoder*; the target is the encoder's final hidden states
                  averaged over all those positions (no answer is generated).
  answer          the LLM answers the instruction about the image and the target is an embedding of its answer
                  (e.g. the last hidden states averaged over the answer's tokens): your own recipe, not the
                  released method.
Sources (one of):
  --blip2 FOLDER              encoder-states computed here with transformers from your local copy of BLIP-2 Flan-T5
                              (e.g. a download of Salesforce/blip2-flan-t5-xxl); offline, --device/--dtype apply
  --embedder MODULE:FUNCTION  an importable function (the current folder is on the path) called a batch at a time as
                              FUNCTION(images: list[PIL.Image.Image] in RGB, instruction: str)
                              -> (len(images), 4096) array; say which recipe it follows with --recipe
  --embeddings FILE.npy       the (N, 4096) rows you computed already, row i for the i-th image in the sorted order
                              this script lists (print it with --list); say which recipe with --recipe
The instruction is the paper's (recognition/data/llm_targets.py: INSTRUCTION) unless --instruction is given. The
file (format in recognition/data/llm_targets.py) names the images relative to its own folder where they lie under
it; train with it: scripts/train_recognition.py --config configs/recognition/exp-clip-vit-b-32.yaml
--set data.llm_targets=FILE.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import run_cli  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGES", help="image files or folders")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--blip2", type=Path, metavar="FOLDER", help="your local BLIP-2 Flan-T5 (encoder-states)")
    source.add_argument("--embedder", metavar="MODULE:FUNCTION", help="your LLM embedding function (see above)")
    source.add_argument("--embeddings", type=Path, metavar="FILE.npy", help="embeddings you computed already")
    source.add_argument("--list", action="store_true", help="only print the images in the order rows must follow")
    parser.add_argument("--recipe", choices=("encoder-states", "answer"),
                        help="how --embedder / --embeddings made the rows (required with them; see above)")
    parser.add_argument("--llm", default="", help="the LLM's name, recorded in the file (default with --blip2: "
                                                  "the folder's name; required otherwise)")
    parser.add_argument("--instruction", help="the prompt shown with each image (default: the paper's)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per LLM call (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="--blip2's device, e.g. cuda (default: %(default)s)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                        help="--blip2's weights (default: %(default)s; the released code ran the LLM in bfloat16)")
    parser.add_argument("--out", type=Path, help="the targets file to write (.safetensors)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def list_images(inputs: list[Path]) -> list[Path]:
    """The image files among `inputs`, folders searched recursively, sorted; UserError for a missing input or none."""
    from ned_outlier.errors import UserError
    from ned_outlier.io.image import IMAGE_SUFFIXES, is_image

    images = []
    for path in inputs:
        if path.is_dir():
            images += [p for p in path.rglob("*") if is_image(p) and p.is_file()]
        elif not path.is_file():
            raise UserError(f"no such file or folder: {path}")
        elif is_image(path):
            images.append(path)
    if not images:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {', '.join(map(str, inputs))}")
    return sorted(set(images))


def load_embedder(spec: str):
    """The function named by MODULE:FUNCTION; UserError when it cannot be imported."""
    from ned_outlier.errors import UserError

    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise UserError(f"--embedder takes MODULE:FUNCTION, got {spec!r}")
    sys.path.insert(0, os.getcwd())
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise UserError(f"cannot load the embedder {spec}: {error}") from None
    return function


def read_rgb(paths: list[Path]):
    """The images as RGB PIL images (what an embedder receives); UserError for an unreadable one."""
    from PIL import Image

    from recognition.data.readers import Sample

    return [Image.fromarray(Sample("", path=path).image()) for path in paths]


def embed(images: list[Path], embedder, instruction: str, batch_size: int, progress: bool):
    """(N, 4096) float32 tensor: the embedder's rows for `images`, a batch at a time; UserError on a wrong shape."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from ned_outlier.errors import UserError
    from recognition.data.llm_targets import TARGET_DIM

    rows = []
    for start in tqdm(range(0, len(images), batch_size), desc="LLM", unit="batch", disable=not progress):
        batch = images[start:start + batch_size]
        values = np.asarray(embedder(read_rgb(batch), instruction), np.float32)
        if values.shape != (len(batch), TARGET_DIM):
            raise UserError(f"the embedder returned shape {values.shape} for {len(batch)} images, expected "
                            f"({len(batch)}, {TARGET_DIM})")
        rows.append(torch.from_numpy(values))
    return torch.cat(rows)


def load_embeddings(path: Path, count: int):
    """The (count, 4096) rows of a .npy file; UserError when missing or of another shape."""
    import numpy as np
    import torch

    from ned_outlier.errors import UserError
    from recognition.data.llm_targets import TARGET_DIM

    try:
        values = np.load(path)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if values.shape != (count, TARGET_DIM):
        raise UserError(f"{path} holds shape {values.shape}; {count} images need ({count}, {TARGET_DIM})")
    return torch.from_numpy(values.astype(np.float32))


def listed_name(image: Path, folder: Path) -> str:
    """The image's path relative to the targets file's folder where it lies under it, else absolute."""
    image = image.resolve()
    return str(image.relative_to(folder)) if image.is_relative_to(folder) else str(image)


def source(args) -> tuple:
    """(embedder or None, recipe, llm name) of the chosen source; UserError for a missing or contradictory option."""
    from ned_outlier.errors import UserError
    from recognition.data.llm_targets import ENCODER_STATES, blip2_encoder_embedder

    if args.blip2:
        if args.recipe not in (None, ENCODER_STATES):
            raise UserError(f"--blip2 computes the {ENCODER_STATES} recipe, not --recipe {args.recipe}")
        return (blip2_encoder_embedder(args.blip2, args.device, args.dtype), ENCODER_STATES,
                args.llm or f"BLIP-2 ({args.blip2.name})")
    if not args.recipe or not args.llm:
        raise UserError("--recipe (encoder-states or answer) and --llm NAME are needed with --embedder or --embeddings")
    return (load_embedder(args.embedder) if args.embedder else None), args.recipe, args.llm


def main(argv=None) -> None:
    args = parse_args(argv)
    from ned_outlier.errors import UserError
    from recognition.data.llm_targets import INSTRUCTION, write_llm_targets

    images = list_images(args.images)
    if args.list:
        print("\n".join(map(str, images)))
        return
    if not args.out:
        raise UserError("--out FILE is needed to write a targets file")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    embedder, recipe, llm = source(args)
    instruction = args.instruction or INSTRUCTION
    if embedder is not None:
        embeddings = embed(images, embedder, instruction, args.batch_size, not args.quiet)
    else:
        embeddings = load_embeddings(args.embeddings, len(images))
    folder = args.out.resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    write_llm_targets(args.out, [listed_name(p, folder) for p in images], embeddings, llm, instruction, recipe)
    print(f"{len(images)} targets ({recipe}) from {llm} -> {args.out}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
