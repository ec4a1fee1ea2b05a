#!/usr/bin/env python
"""How much does a uniform loss scale change NED's manipulator training under Adam?

    python benchmarks/loss_scale_adam.py [--iterations 60] [--scales 0.25,0.5] [--lambdas windows.csv]

The outlier experiment's control arm ("NED + mean lambda for all") gives every window the same weight c, the mean
lambda of the table. Each of NED's four networks has its own Adam (ned/trainer.py: make_optimizers), and Adam's
update m / (sqrt(v) + eps) does not change when every gradient is multiplied by c, except through eps. So a uniform
loss scale is not a smaller learning rate. But the control is not a uniform scale either: a reference-guided step
weights its target terms by lambda * lambda_r (ned/objective.py: reference_target), which is c^2 when every window
weighs c, while the source-only terms and the latent-guided steps weigh c.

The same networks (NED's, at the widths of configs/ned/experiment_training.yaml), the same initial weights, the
same batches and latents, N iterations of NED's four steps (ned/trainer.py: iteration) in these arms:

    plain          every window weighs 1 (no lambda table): the reference trajectory theta_1
    ones           every window's lambda is 1 (a sanity check: must equal plain exactly)
    scale c        the source windows weigh c, the reference windows 1: every loss term of every step is scaled
                   by c, the pure uniform loss scale
    control c      every window weighs c, as the experiment's control arm trains (reference-guided terms: c^2)
    lr x c         plain, with every learning rate multiplied by c (what "a smaller effective learning rate" means)
    other batches  plain, same initial weights, but other batches and latents (seed + 1): the run-to-run spread
                   that sampling alone gives, as a yardstick

Printed per arm: ||theta_arm - theta_1|| / ||theta_1 - theta_0|| over all parameters at a quarter, half, three
quarters and the end of the run and its maximum over the iterations, then per network at the end; and the mean over
the iterations of |term_arm - term_1| / mean |term_1| for the unweighted loss terms.

Data: synthetic windows, NOT SynthMEAD or MEAD: random smooth 10-frame code sequences of the mediapipe-au width (3
mouth + 17 expression components) with a per-emotion offset, 7 emotions. No learning-rate decay (the experiment's
linear decay multiplies every arm's rate alike). One torch thread (these networks are too small to gain from more);
about 0.2 s per run and iteration, so the defaults (9 runs of 60 iterations) take about 2 minutes on a CPU core, 12
runs with --lambdas about 2.5. The experiment itself trains about 830 iterations per run (8 epochs of its 6603
windows at batch 64): --iterations 830 follows it that far.
"""

from __future__ import annotations

import argparse
import copy
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.manipulator.ned.networks import NedNetworks  # noqa: E402
from ned_outlier.manipulator.ned.objective import Windows  # noqa: E402
from ned_outlier.manipulator.ned.trainer import (NedObjective, OptimSection, iteration, load_ned_config,  # noqa: E402
                                                 make_optimizers)

NETWORKS = ("generator", "mapping", "style_encoder", "discriminator")
TERMS = {"d_latent/real": "D real", "d_latent/fake": "D fake", "d_reference/fake": "D ref fake",
         "g_latent/adversarial": "G adv", "g_latent/cycle": "G cycle", "g_latent/mouth": "G mouth",
         "g_reference/adversarial": "G ref adv", "g_reference/style": "G ref style"}  # unweighted terms: short names
MOUTH_DIMS, EXPRESSION_DIMS, WINDOW, EMOTIONS = 3, 17, 10, 7


class _Backward:
    """What ned/trainer.py's iteration needs of an Accelerator on one CPU process."""

    @staticmethod
    def backward(loss: torch.Tensor) -> None:
        loss.backward()


def synthetic_windows(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(count, WINDOW, 20) smooth random code sequences with a per-emotion offset, and their emotions (count,)."""
    rng = np.random.default_rng(seed)
    emotion = rng.integers(0, EMOTIONS, count)
    offsets = rng.normal(0.0, 0.5, (EMOTIONS, MOUTH_DIMS + EXPRESSION_DIMS))
    offsets[:, :MOUTH_DIMS] = 0.0  # the mouth moves with speech, not with the emotion
    walk = np.cumsum(rng.normal(0.0, 0.1, (count, WINDOW, MOUTH_DIMS + EXPRESSION_DIMS)), axis=1)
    speech = 0.4 * np.abs(np.sin(rng.uniform(2, 5, (count, 1, MOUTH_DIMS)) * np.arange(WINDOW)[None, :, None] / 4
                                 + rng.uniform(0, np.pi, (count, 1, MOUTH_DIMS))))
    codes = offsets[emotion][:, None, :] + walk
    codes[..., :MOUTH_DIMS] += speech
    return torch.from_numpy(codes.astype(np.float32)), torch.from_numpy(emotion)


class Arm:
    """One training run: its networks, optimisers and window weights."""

    def __init__(self, name: str, nets: NedNetworks, optim: OptimSection, loss, source_weight: float | None,
                 reference_weight: float | None, lr_factor: float = 1.0, stream: int = 0):
        self.name, self.stream = name, stream
        self.nets = copy.deepcopy(nets)
        self.objective = NedObjective(self.nets, MOUTH_DIMS, loss)
        self.optimizers = make_optimizers(self.nets, optim)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] *= lr_factor
        self.source_weight, self.reference_weight = source_weight, reference_weight
        self.distance: list[dict[str, float]] = []  # per iteration: network -> ||theta - theta_1||
        self.terms: list[dict[str, float]] = []

    def step(self, codes, emotion, ref_codes, ref_emotion, z) -> None:
        def weight(value):
            return None if value is None else torch.full((len(codes),), value)

        source = Windows(codes, emotion, weight(self.source_weight))
        reference = Windows(ref_codes, ref_emotion, weight(self.reference_weight))
        self.terms.append(iteration(_Backward(), self.objective, self.optimizers, source, reference, z))

    def flat(self, network: str) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in getattr(self.nets, network).parameters()])


def mean_lambda(path: str) -> float:
    """The mean lambda over every row of scripts/score_outliers.py's windows.csv (the experiment's control weight)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return float(np.mean([float(row["lambda"]) for row in csv.DictReader(handle)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--scales", default="0.25,0.5", help="comma-separated loss scales c")
    parser.add_argument("--lambdas", default=None,
                        help="a windows.csv of scripts/score_outliers.py: its mean lambda is added to the scales")
    parser.add_argument("--config", default=str(REPO / "configs/ned/experiment_training.yaml"),
                        help="NED training YAML whose model, loss, optim and batch size are used")
    parser.add_argument("--windows", type=int, default=2048, help="synthetic training windows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scales = [float(s) for s in args.scales.split(",") if s.strip()]
    if args.lambdas:
        scales.append(round(mean_lambda(args.lambdas), 4))
        print(f"mean lambda of {args.lambdas}: {scales[-1]}")
    config = load_ned_config(args.config)
    batch = config.train.batch_size

    torch.manual_seed(args.seed)
    nets = NedNetworks(MOUTH_DIMS + EXPRESSION_DIMS, EMOTIONS, config.model)
    theta0 = {name: torch.cat([p.detach().flatten() for p in getattr(nets, name).parameters()]).clone()
              for name in NETWORKS}
    arms = [Arm("plain", nets, config.optim, config.loss, None, None),
            Arm("ones", nets, config.optim, config.loss, 1.0, 1.0)]
    for c in scales:
        arms += [Arm(f"scale {c:g}", nets, config.optim, config.loss, c, 1.0),
                 Arm(f"control {c:g}", nets, config.optim, config.loss, c, c),
                 Arm(f"lr x {c:g}", nets, config.optim, config.loss, None, None, lr_factor=c)]
    arms.append(Arm("other batches", nets, config.optim, config.loss, None, None, stream=1))
    reference, others = arms[0], arms[1:]

    codes, emotion = synthetic_windows(args.windows, args.seed)
    streams = [torch.Generator().manual_seed(args.seed + k) for k in (0, 1)]  # batches and latents
    travelled: list[dict[str, float]] = []  # per iteration: network -> ||theta_1 - theta_0||
    start = time.perf_counter()
    for _ in range(args.iterations):
        draws = []
        for generator in streams:
            pick = torch.randint(0, len(codes), (batch,), generator=generator)
            ref = torch.randint(0, len(codes), (batch,), generator=generator)
            z = torch.randn(batch, config.model.latent_dim, generator=generator)
            draws.append((codes[pick], emotion[pick], codes[ref], emotion[ref], z))
        for arm in arms:
            arm.step(*draws[arm.stream])
        base = {name: reference.flat(name) for name in NETWORKS}
        travelled.append({name: float((base[name] - theta0[name]).norm()) for name in NETWORKS})
        for arm in others:
            arm.distance.append({name: float((arm.flat(name) - base[name]).norm()) for name in NETWORKS})
    seconds = time.perf_counter() - start

    def total(row: dict[str, float]) -> float:
        return float(np.sqrt(sum(value**2 for value in row.values())))

    print(f"{args.iterations} iterations of NED's 4 steps, batch {batch}, widths of {Path(args.config).name}, "
          f"Adam lr {config.optim.lr:g} betas {tuple(config.optim.betas)} eps 1e-08, {args.windows} synthetic "
          f"windows, seed {args.seed}; {len(arms)} runs in {seconds:.0f} s")
    print(f"||theta_1 - theta_0|| after the last iteration: all {total(travelled[-1]):.4g}, "
          + ", ".join(f"{name} {travelled[-1][name]:.4g}" for name in NETWORKS))
    marks = sorted({max(1, args.iterations * k // 4) for k in (1, 2, 3, 4)})
    print()
    print("relative parameter difference ||theta_arm - theta_1|| / ||theta_1 - theta_0||, all parameters, after "
          "iteration:")
    print(f"{'arm':14s} " + " ".join(f"{mark:>9d}" for mark in marks) + f" {'max':>9s}")
    ratios = {}
    for arm in others:
        ratios[arm.name] = [{name: d[name] / max(t[name], 1e-30) for name in NETWORKS} | {"all": total(d) / total(t)}
                            for d, t in zip(arm.distance, travelled)]
        row = ratios[arm.name]
        print(f"{arm.name:14s} " + " ".join(f"{row[mark - 1]['all']:9.2e}" for mark in marks)
              + f" {max(r['all'] for r in row):9.2e}")
    print()
    print("per network after the last iteration (max over the iterations):")
    print(f"{'arm':14s} " + " ".join(f"{name:>19s}" for name in NETWORKS))
    for arm in others:
        row = ratios[arm.name]
        cells = [f"{row[-1][name]:.2e} ({max(r[name] for r in row):.2e})" for name in NETWORKS]
        print(f"{arm.name:14s} " + " ".join(f"{cell:>19s}" for cell in cells))
    print()
    print("relative difference of the unweighted loss terms: mean_t |term_arm - term_1| / mean_t |term_1|")
    print(f"{'arm':14s} " + " ".join(f"{short:>11s}" for short in TERMS.values()))
    for arm in others:
        cells = []
        for term in TERMS:
            ours = np.array([log[term] for log in arm.terms])
            theirs = np.array([log[term] for log in reference.terms])
            cells.append(f"{np.mean(np.abs(ours - theirs)) / max(np.mean(np.abs(theirs)), 1e-30):11.2e}")
        print(f"{arm.name:14s} " + " ".join(cells))
    print()
    print("Adam's second moments in the plain run after the last iteration: median sqrt(v) per network "
          "(eps is 1e-08; in brackets the fraction of parameters with sqrt(v) < 1e-6)")
    for name, optimizer in reference.optimizers.items():
        v = torch.cat([state["exp_avg_sq"].flatten() for state in optimizer.state.values()]).sqrt()
        print(f"  {name:14s} {float(v.median()):.2e}  ({float((v < 1e-6).float().mean()):.4f})")


if __name__ == "__main__":
    main()
