#!/usr/bin/env python
"""WAR / UAR of every recognition family trained on the synthetic emotion set and tested on unseen identities, plus
the pretrained FER2013 mini-Xception on the same test set. Prints a Markdown table and writes results.json.

    python scripts/make_emotion_set.py --out out/emotion_set            # the data (a few minutes)
    python benchmarks/recognition_accuracy.py --data out/emotion_set [--epochs 30] [--models 'cnn-*']
    python benchmarks/recognition_accuracy.py --models cnn-mobilenetv2 --set data.augment.rotation=0  # one change

Entries and their training overrides: configs/recognition/accuracy_benchmark.yaml. Each model trains with
scripts/train_recognition.py's loop into OUT/<model>/ (re-running resumes or skips finished models); results.json
keeps the rows of earlier runs, so the families can be run one at a time.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.io.atomic import atomic_output  # noqa: E402
from recognition import create_model  # noqa: E402
from recognition.data.synthetic import read_manifest  # noqa: E402
from recognition.evaluate import evaluate, summarise  # noqa: E402
from recognition.training.config import load_training_config  # noqa: E402
from recognition.training.trainer import train  # noqa: E402

BENCHMARK = REPO / "configs" / "recognition" / "accuracy_benchmark.yaml"
PRETRAINED = "fer2013-minixception (pretrained, not trained here)"


def test_scores(model, data: Path) -> dict[str, float]:
    """WAR / UAR of `model` on data/test (whole images: they are face crops), as scripts/evaluate.py scores them, and
    the accuracy on the test faces of LFW (25-px grey photos) and on the others (sharp colour faces) apart."""
    records = evaluate(data / "test", model, faces=None).records
    metrics = summarise(records, model.labels)["metrics"]
    source = {(data / row.path).resolve(): row.source for row in read_manifest(data)}
    correct = {True: [], False: []}  # from LFW?
    for record in records:
        correct[source[Path(record.input).resolve()] == "lfw"].append(
            model.labels[int(record.probabilities.argmax())] == record.truth)
    return {"war": metrics["war"], "uar": metrics["uar"], "test images": metrics["labelled"],
            "accuracy lfw": float(np.mean(correct[True])) if correct[True] else float("nan"),
            "accuracy sharp": float(np.mean(correct[False])) if correct[False] else float("nan")}


def train_entry(name: str, entry: dict, common: list[str], data: Path, out: Path, epochs: int,
                extra: list[str]) -> dict[str, float]:
    overrides = [*common, *entry["overrides"], *extra, f"train.epochs={epochs}", f"train.output_dir={out}",
                 "data.train.layout=folders", f"data.train.root={data / 'train'}", "data.train.split=''",
                 "data.val.layout=folders", f"data.val.root={data / 'test'}", "data.val.split=''",
                 "model.pretrained=null", "data.llm_targets=null"]
    start = time.perf_counter()
    result = train(load_training_config(REPO / entry["config"], overrides))
    model = create_model(name, pretrained=result.model_path)
    scores = test_scores(model, data)
    if not result.history:  # the run had finished before: its time and loss are the earlier row's
        return scores
    return {**scores, "train seconds": time.perf_counter() - start, "final loss": result.history[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "out" / "emotion_set",
                        help="scripts/make_emotion_set.py output")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "accuracy", help="training runs and results.json")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--models", default="*", help="fnmatch pattern over the benchmark's entries")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="one more override for every family, e.g. data.augment.rotation=0 (the row's name "
                             "then carries it)")
    args = parser.parse_args()
    benchmark = yaml.safe_load(BENCHMARK.read_text())
    results_file = args.out / "results.json"  # rows of earlier runs (other --models) are kept
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    results[PRETRAINED] = test_scores(create_model("fer2013-minixception"), args.data)
    for name, entry in benchmark["models"].items():
        if fnmatch.fnmatch(name, args.models):
            row = name + "".join(f" [{override}]" for override in args.overrides)
            folder = args.out / row.replace(" ", "").replace("[", "_").replace("]", "").replace("=", "-")
            results[row] = results.get(row, {}) | train_entry(name, entry, benchmark["common"], args.data, folder,
                                                              args.epochs, args.overrides)
            results[row]["epochs"] = args.epochs
            print(row, results[row], flush=True)
            write_results(results_file, results)
    write_results(results_file, results)
    print(table(results))


def write_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(results, indent=2, default=float) + "\n")


def table(results: dict) -> str:
    """Markdown: one row per model, chance level in the header."""
    chance = 1 / 7
    lines = [f"| model | epochs | WAR | UAR | accuracy: LFW / sharp test faces | train min | (chance {chance:.3f}) |",
             "|---|---|---|---|---|---|---|"]
    for name, row in results.items():
        minutes = f"{row['train seconds'] / 60:.0f}" if "train seconds" in row else "-"
        split = f"{row['accuracy lfw']:.3f} / {row['accuracy sharp']:.3f}" if "accuracy lfw" in row else "-"
        lines.append(f"| {name} | {row.get('epochs', '-')} | {row['war']:.3f} | {row['uar']:.3f} | {split} | "
                     f"{minutes} | {'UAR > 2x chance' if row['uar'] > 2 * chance else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
