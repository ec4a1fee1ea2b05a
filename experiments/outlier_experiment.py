"""What the outlier weights buy: NED trained on SynthMEAD with and without lambda, same seeds, judged on held-out
identities.

    result = run_experiment(load_experiment_config("configs/ned/experiment.yaml"))

Steps (each result kept in output_dir, so an interrupted run resumes):
0. `prepare_synthmead` and `prepare_scorers`: SynthMEAD (scripts/make_synthmead.py's build, from
   `synthmead_config`) and each scorer's lambda table (scripts/score_outliers.py's scoring, from its
   `scoring_config`; for caption-CLIP, trained here, its emotion set and training first), each made only where it is
   missing.
1. Each scorer's detection of the injected outliers: precision and recall of "lambda < 1" against truth.csv's window
   truth (SynthMEAD's ambiguous and wrongly labelled clips, and neutral onset/offset windows), over the training
   actors' emotional windows.
2. A parameter-space judge (code_classifier.py) trained on the clean, expressive windows of the training actors
   (cached in output_dir/code_judge.pt); its accuracy on the test actors' clean windows says how far to trust it.
   With `judge_relative` it reads each window relative to its person's mean neutral code (the mean over that
   actor's neutral windows; for a test actor, the sources' own neutral clips), which takes out most of what the
   reconstruction's codes carry of identity.
3. For each seed and arm (`arms`), NED trained without lambda (`none`), with a scorer's lambda (`lambda_<scorer>`),
   with every window weighted by a scorer's mean lambda (`mean_<scorer>`: a control with the same overall weight,
   without choosing between windows) and with SynthMEAD's truth as lambda (`oracle`: 0 for a true outlier, 1
   otherwise), identical otherwise. Each finished run is kept
   in output_dir/results.json and in `summary_file` (committed), and skipped when the experiment runs again.
4. Each model translates every clean test clip to every emotion, with each of `latent_draws` latents z (the same
   for every arm of a seed; one style per emotion and draw, as an edit uses one). Judged by: the code judge (the
   fraction of translated windows classified as the target), mouth preservation (Pearson r over time between the
   source's and the generator's mouth code, mouth="edit" so that the generator's own mouth is measured), and
   fer2013-minixception on rendered frames (warp renderer, mouth kept; the fraction of face frames whose top class
   is the target, and the mean probability of the target) for the first `render_clips` test clips (with the first
   draw), and, without a classifier, the paired code error: the mean |edited - twin| of the codes (in units of the
   training codes' per-component deviation) against the clip's SynthMEAD twin in the target emotion (same identity
   and speech), with the source's own |source - twin| as the reference (an edit that did nothing scores that).
Reported: mean and standard deviation over the seeds for each arm.
"""

from __future__ import annotations

import fcntl
import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ned_outlier.config import from_dict, load_config, repo_path
from ned_outlier.data.mead import MeadSelection, scan_mead
from ned_outlier.data.ned_windows import (SCORES_SUMMARY, actor_neutral_codes, build_windows, clip_codes,
                                          read_lambda_table, reconstruct_clips, reconstruct_videos)
from ned_outlier.data.synthmead import load_synth_config, outlier_detection, read_truth, twin_path
from ned_outlier.errors import UserError
from ned_outlier.io.atomic import atomic_output
from ned_outlier.io.video import VideoReader, VideoWriter
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig
from experiments.code_classifier import cached_code_classifier

LOG = logging.getLogger(__name__)
NO_LAMBDA, ORACLE = "none", "oracle"
"""The arms that need no scorer: plain NED, and SynthMEAD's truth as lambda. Every scorer S of `scorers` adds the
arms lambda_S (its lambda) and mean_S (the control: every window at S's mean lambda)."""
RUN_PARTS = ("runs", "curves", "run_fingerprints", "run_latent_draws", "scorers")
"""What results.json and the committed summary keep of the finished runs, each a mapping by run key (scorers: by
scorer name): the measures, the per-epoch learning curve, the arm's fingerprint, the latent draws judged with."""


@dataclass(frozen=True)
class ScorerSpec:
    """One scorer of the experiment. lambdas: its windows.csv (scripts/score_outliers.py's table), made with
    scoring_config where missing. A scorer trained here (caption-CLIP: no pretrained CLIP offline) also names how:
    emotion_set_config / emotion_set: scripts/make_emotion_set.py's config and output folder, training_config:
    scripts/train_recognition.py's config, whose model is scoring_config's `pretrained`; each made where missing."""

    lambdas: str
    scoring_config: str
    emotion_set_config: str | None = None
    emotion_set: str | None = None
    training_config: str | None = None


DEFAULT_SCORERS = {"fer": {"lambdas": "out/synthmead_lambda/windows.csv",
                           "scoring_config": "configs/ned/score_outliers.yaml"}}


@dataclass(frozen=True)
class ExperimentConfig:
    """data / params_cache: SynthMEAD and its reconstructions; synthmead_config: how `prepare_synthmead` makes data
    when it is missing; scorers: name -> ScorerSpec's keys (a mapping: its lambda table and how it is made);
    training_config: the NED training YAML every arm uses (its data section is overridden here), with
    training_overrides (KEY=VALUE, as train_ned.py's --set) applied to it; judge_relative / judge_hidden: the code
    judge reads codes relative to each person's mean neutral code / its GRU width; arms: which of `valid_arms` run;
    summary_file: the committed summary (None: none), whose finished runs are skipped; latent_draws: how many latent
    draws (latent_draw_seeds) each run's code measures average over (a run judged with another number is judged
    again from its kept model, not trained again)."""

    data: str = "out/synthmead"
    params_cache: str = "out/synthmead_params"
    scorers: dict[str, dict] = field(default_factory=lambda: dict(DEFAULT_SCORERS))
    synthmead_config: str = "configs/ned/synthmead.yaml"
    output_dir: str = "out/ned_experiment"
    training_config: str = "configs/ned/experiment_training.yaml"
    training_overrides: tuple[str, ...] = ()
    test_actors: tuple[str, ...] = ("S001", "S002", "S007", "S008")
    seeds: tuple[int, ...] = (0, 1, 2)
    emotions: tuple[str, ...] = ("neutral", "angry", "disgusted", "fear", "happy", "sad", "surprised")
    render_clips: int = 4
    reconstruct_config: str = "configs/reconstruct/default.yaml"
    judge_relative: bool = True
    judge_hidden: int = 64
    arms: tuple[str, ...] = (NO_LAMBDA, "lambda_fer", "mean_fer", ORACLE)
    summary_file: str | None = "docs/results/ned_lambda.json"
    latent_draws: int = 32

    def __post_init__(self) -> None:
        if self.latent_draws < 1:
            raise ValueError(f"latent_draws must be at least 1, got {self.latent_draws}")
        for name in self.scorers:
            self.scorer(name)  # a UserError naming the key when a scorer's settings are wrong
        unknown = [arm for arm in self.arms if arm not in self.valid_arms]
        if unknown or not self.arms:
            raise ValueError(f"arms must be some of {', '.join(self.valid_arms)}, not {', '.join(unknown) or 'none'}")

    def scorer(self, name: str) -> ScorerSpec:
        return from_dict(ScorerSpec, self.scorers[name], f"scorers.{name}")

    @property
    def valid_arms(self) -> tuple[str, ...]:
        return (NO_LAMBDA, *(f"lambda_{name}" for name in self.scorers), ORACLE,
                *(f"mean_{name}" for name in self.scorers))

    @property
    def scorers_used(self) -> tuple[str, ...]:
        """The scorers whose lambda tables the arms need: those of the lambda_ and mean_ arms, and for the oracle
        (which reweights a table's windows by the truth) the first scorer of `scorers`."""
        names = [arm.split("_", 1)[1] for arm in self.arms if arm.startswith(("lambda_", "mean_"))]
        if ORACLE in self.arms:
            names.append(next(iter(self.scorers), None))
        if None in names:
            raise UserError("the oracle arm reweights a scorer's lambda table: give at least one scorer")
        return tuple(dict.fromkeys(names))


def arm_name(arm: str) -> str:
    """The table's column title of an arm."""
    if arm == NO_LAMBDA:
        return "NED (no lambda)"
    if arm == ORACLE:
        return "NED + truth as lambda (oracle)"
    kind, scorer = arm.split("_", 1)
    return f"NED + {scorer} lambda" if kind == "lambda" else f"NED + {scorer}'s mean lambda for all (control)"


def arm_order(arms) -> list[str]:
    """Arms in the tables' order: plain NED, the scorers' lambdas, the oracle, the controls."""
    rank = {NO_LAMBDA: 0, ORACLE: 2}
    return sorted(arms, key=lambda arm: (rank.get(arm, 1 if arm.startswith("lambda_") else 3), arm))


def load_experiment_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    return load_config(path, ExperimentConfig, overrides)


def prepare_synthmead(config: ExperimentConfig, progress: bool = True) -> list[Path]:
    """Make SynthMEAD in `data` unless its truth.csv is there (as scripts/make_synthmead.py does, from
    `synthmead_config`). Returns the folders written."""
    from ned_outlier.data.synthmead import build_synthmead

    root = Path(config.data)
    if (root / "truth.csv").is_file():
        return []
    if root.is_dir() and any(root.iterdir()):
        raise UserError(f"{root} has files but no truth.csv (an unfinished SynthMEAD?): remove it and run again, "
                        "or point `data` at a finished set")
    build_synthmead(load_synth_config(repo_path(config.synthmead_config)), root, progress)
    return [root]


def prepare_scorers(config: ExperimentConfig, progress: bool = True) -> list[Path]:
    """Make each lambda table the arms use unless it is there (as scripts/score_outliers.py does), with its scorer's
    emotion set and model first where the scorer is trained here and they are missing; after prepare_synthmead.
    Returns the folders written."""
    made = []
    for name in config.scorers_used:
        made += _prepare_scorer(name, config.scorer(name), Path(config.data), progress)
    return made


def _prepare_scorer(name: str, spec: ScorerSpec, root: Path, progress: bool) -> list[Path]:
    """Make `spec`'s lambda table of SynthMEAD `root` where it is missing (and, for a scorer trained here, its
    emotion set and model where they are missing); the folders written."""
    from ned_outlier.face.finder import FaceFinder
    from recognition import create_model
    from recognition.outlier_scoring import load_scoring_config, score_clips, write_scores

    lambdas, made = Path(spec.lambdas), []
    if lambdas.is_file():
        return made
    if lambdas.name != "windows.csv":
        raise UserError(f"scorers.{name}.lambdas must name a windows.csv (the scorer's table), not {lambdas}")
    scoring = load_scoring_config(repo_path(spec.scoring_config))
    if scoring.pretrained is not None and not Path(scoring.pretrained).is_file():
        if spec.training_config is None:
            raise UserError(f"scorer {name}: {scoring.pretrained} ({spec.scoring_config}'s pretrained) is missing "
                            f"and scorers.{name} names no training_config to make it")
        made += _train_scorer(name, spec, progress)
    classifier = create_model(scoring.model_name, pretrained=scoring.pretrained, **scoring.options)
    scores = score_clips(scan_mead(root, scoring.mead), classifier, FaceFinder(), scoring, progress)
    write_scores(scores, root, lambdas.parent, scoring, scoring.model_name)
    return [*made, lambdas.parent]


def _train_scorer(name: str, spec: ScorerSpec, progress: bool) -> list[Path]:
    """Train a scorer made here (scripts/train_recognition.py with spec.training_config), on its emotion set
    (scripts/make_emotion_set.py with spec.emotion_set_config into spec.emotion_set, made where it has no
    manifest.csv); the folders written."""
    from recognition.data.synthetic import build_emotion_set, load_set_config
    from recognition.training.config import load_training_config
    from recognition.training.trainer import train

    made = []
    if spec.emotion_set_config is not None:
        if spec.emotion_set is None:
            raise UserError(f"scorers.{name}: emotion_set_config needs emotion_set (the folder it is written to)")
        folder = Path(spec.emotion_set)
        if not (folder / "manifest.csv").is_file():
            build_emotion_set(load_set_config(repo_path(spec.emotion_set_config)), folder, progress=progress)
            made.append(folder)
    result = train(load_training_config(repo_path(spec.training_config)))
    return [*made, Path(result.model_path).parent]


def judge_baselines(neutrals: dict[str, np.ndarray], relative: bool = True) -> dict[str, np.ndarray]:
    """actor -> (C,) what the judge reads each actor's codes relative to: its mean neutral code (`neutrals`, from
    actor_neutral_codes), or zeros for every actor when not `relative` (the judge then reads the codes as they
    are)."""
    return neutrals if relative else {name: np.zeros_like(code) for name, code in neutrals.items()}


def code_spread(neutrals: dict[str, np.ndarray], codes: np.ndarray) -> dict[str, float]:
    """How much of the codes is the person: the standard deviation over actors of their mean neutral codes
    (`neutrals`), and that of all frames' codes (N, T, C), each averaged over the components."""
    means = np.stack(list(neutrals.values()))
    return {"actors_neutral_sd": float(means.std(axis=0).mean()),
            "codes_sd": float(codes.reshape(-1, codes.shape[2]).std(axis=0).mean())}


def emotion_directions(means: np.ndarray, emotion: np.ndarray, actor: np.ndarray, emotions: tuple[str, ...],
                       train_actors: tuple[str, ...]) -> dict[str, dict]:
    """Whether an emotion moves every person's codes the same way: (N, C) window means of codes relative to each
    person's neutral, their (N,) emotion indices and (N,) actors -> per emotion (not neutral, whose relative codes
    are ~0) the cosine between each person's mean code of that emotion and the training actors' mean (for a
    training actor, the others' mean): {"train_median": median over the training actors, "actors": {actor: cosine}
    for the other actors}. A judge trained on the training actors cannot read an emotion whose direction a test
    actor does not share."""
    def unit(vector: np.ndarray) -> np.ndarray:
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    directions = {}
    for k, name in enumerate(emotions):
        if name == "neutral":
            continue
        per_actor = {a: means[(actor == a) & (emotion == k)].mean(axis=0) for a in sorted(set(actor))
                     if ((actor == a) & (emotion == k)).any()}
        trained = [a for a in per_actor if a in train_actors]
        if len(trained) < 2:
            continue
        total = sum(per_actor[a] for a in trained)
        cosine = {a: float(unit(per_actor[a]) @ unit(total - per_actor[a] if a in trained else total))
                  for a in per_actor}
        directions[name] = {"train_median": float(np.median([cosine[a] for a in trained])),
                            "actors": {a: c for a, c in cosine.items() if a not in trained}}
    return directions


def clean_mask(windows, truths: dict) -> np.ndarray:
    """(N,) windows of clean clips that lie in the expressive span (neutral clips: all of them)."""
    return np.array([truths[windows.clip_paths[c]].kind == "clean"
                     and not truths[windows.clip_paths[c]].window_is_outlier(int(s), windows.codes.shape[1])
                     for c, s in zip(windows.clip, windows.start)])


def pearson_rows(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over components of the Pearson r over time of (T, M) series (components that do not move are skipped)."""
    values = [np.corrcoef(a[:, m], b[:, m])[0, 1] for m in range(a.shape[1]) if a[:, m].std() > 1e-6
              and b[:, m].std() > 1e-6]
    return float(np.mean(values)) if values else float("nan")


def paired_code_error(edited: np.ndarray, twin: np.ndarray, source: np.ndarray, scale: np.ndarray
                      ) -> tuple[float, float]:
    """(T, C) codes of an edit, of the clip's twin in the target emotion and of the source; scale (C,) -> the mean
    |edited - twin| / scale and |source - twin| / scale over the frames where all three have a face."""
    found = np.isfinite(edited).all(1) & np.isfinite(twin).all(1) & np.isfinite(source).all(1)
    return (float(np.mean(np.abs(edited[found] - twin[found]) / scale)),
            float(np.mean(np.abs(source[found] - twin[found]) / scale)))


def window_target_accuracy(nets, windows: np.ndarray, judge, seed: int = 0, baseline: np.ndarray | None = None,
                           neutral: np.ndarray | None = None) -> float:
    """The judge's target accuracy on held-out (N, T, C) windows translated by `nets` (NedNetworks) toward every
    emotion with latents drawn from `seed` (judged relative to the (N, C) baseline, if given; (N, C) neutral: the
    windows' persons' neutral codes, for networks trained relative to them): what the experiment tracks per epoch
    (the learning curve)."""
    import torch

    codes = torch.from_numpy(np.asarray(windows, np.float32))
    person = None if neutral is None else torch.from_numpy(np.asarray(neutral, np.float32))
    z = torch.randn(len(codes), nets.config.latent_dim, generator=torch.Generator().manual_seed(seed))
    hits = [np.mean(judge.predict(nets.translate(codes, nets.mapping(z, torch.full((len(codes),), k)), person)
                                  .numpy(), baseline) == k) for k in range(nets.n_emotions)]
    return float(np.mean(hits))


def latent_draw_seeds(seed: int, draws: int) -> list[int]:
    """The torch seeds of the `draws` latents a run of `seed` is judged with: 10000 j + seed for j = 0..draws-1. The
    same for every arm of a seed (so the arms stay paired), the first is the seed itself (the single draw the
    measure used before `latent_draws`), and two seeds below 10000 never share one."""
    return [10_000 * j + seed for j in range(draws)]


def judge_model(model_path: Path, draws: list[int], test_clips: list, judge, config: ExperimentConfig, fer, faces,
                edit_config, work: Path, twins: dict | None = None, baselines: dict | None = None,
                neutrals: dict | None = None) -> dict[str, float]:
    """code_measures of one trained model over the latent `draws` (latent_draw_seeds), and fer's target rate and
    mean p(target) on the first `config.render_clips` test clips rendered with the first draw."""
    measures = code_measures(model_path, draws, test_clips, judge, config.emotions, twins, baselines, neutrals)
    return measures | rendered_measures(model_path, draws[0], test_clips[:config.render_clips], config.emotions, fer,
                                        faces, edit_config, work, neutrals)


def code_measures(model_path: Path, draws: list[int], test_clips: list, judge, emotions: tuple[str, ...],
                  twins: dict | None = None, baselines: dict | None = None,
                  neutrals: dict | None = None) -> dict[str, float]:
    """The code judge's target accuracy (relative to baselines[actor], where given), mouth r and, where `twins`
    ((clip path, emotion) -> FaceParams of its twin) has the twin, the paired code error of one trained model, each
    over every test clip (clip, FaceParams) translated to every emotion with each latent of `draws` (torch seeds; one
    style per emotion and draw, as an edit uses); neutrals[actor]: the actor's mean neutral code, for a model trained
    relative to it."""
    from ned_outlier.manipulator.ned.inference import NedManipulator

    ned = NedManipulator(model_path)
    correct, total, mouth_r, errors, source_errors = 0, 0, [], [], []
    scale = judge.scale.numpy()
    for clip, params in test_clips:
        source = clip_codes(params)
        found = params.face_found
        starts = [s for s in range(len(source) - 9) if found[s:s + 10].all()]
        mouth = len(params.schema.mouth_names)
        neutral = (neutrals or {}).get(clip.actor)
        for emotion in emotions:
            twin = (twins or {}).get((clip.path, emotion))
            for draw in draws:
                translated = ned.translate(params, ned.emotion_style(emotion, draw), neutral)
                windows = np.stack([translated[s:s + 10] for s in starts])
                correct += int(np.sum(judge.predict(windows, (baselines or {}).get(clip.actor))
                                      == emotions.index(emotion)))
                total += len(windows)
                mouth_r.append(pearson_rows(source[found, :mouth], translated[found, :mouth]))
                if twin is not None:
                    error, source_error = paired_code_error(translated, clip_codes(twin), source, scale)
                    errors.append(error)
                    source_errors.append(source_error)
    return {"code_judge_target_accuracy": correct / total, "mouth_r": float(np.nanmean(mouth_r)),
            "code_error": float(np.mean(errors)) if errors else float("nan"),
            "source_code_error": float(np.mean(source_errors)) if source_errors else float("nan")}


def rendered_measures(model_path: Path, draw: int, clips: list, emotions: tuple[str, ...], fer, faces, edit_config,
                      work: Path, neutrals: dict | None = None) -> dict[str, float]:
    """fer's target rate and mean p(target) over the face frames of `clips` (clip, FaceParams) edited to every
    emotion by one trained model (latent seed `draw`, mouth kept) and rendered with edit_config into `work`; NaN
    for no clips."""
    from ned_outlier.manipulator.ned.inference import NedManipulator
    from ned_outlier.pipeline import FrameEditor
    from recognition.evaluate import evaluate_video, summarise

    ned = NedManipulator(model_path, seed=draw)
    hits, target_probability, faces_seen = 0.0, 0.0, 0
    for clip, params in clips:
        neutral = (neutrals or {}).get(clip.actor)
        for emotion in emotions:
            target = ned.target_codes(params, emotion=emotion, mouth="keep", neutral=neutral)
            video = work / f"{clip.actor}_{clip.emotion}_{clip.clip_id}_{emotion}.mp4"
            editor = FrameEditor(params, target, edit_config)
            info = VideoReader(clip.path).info
            with VideoWriter(video, info.fps, info.width, info.height) as writer:
                for index, frame in enumerate(VideoReader(clip.path)):
                    writer.write(editor.render(index, frame))
            summary = summarise(evaluate_video(video, fer, faces).records, fer.labels,
                                emotion if emotion in fer.labels else None)
            if "target_rate" in summary:
                hits += summary["target_rate"] * summary["with_face"]
                target_probability += summary["mean_probabilities"][emotion] * summary["with_face"]
                faces_seen += summary["with_face"]
            video.unlink()
    return {"fer_target_rate": hits / faces_seen if faces_seen else float("nan"),
            "fer_target_probability": target_probability / faces_seen if faces_seen else float("nan")}


def load_twins(test_clips: list, root: Path, cache: Path, emotions: tuple[str, ...], reconstruction,
               progress: bool) -> dict:
    """(clip path, emotion) -> FaceParams of the reconstructed twin, for every twin SynthMEAD made of the clips
    (none for a set made without `twins`)."""
    wanted = [(clip.path, emotion, twin_path(root, clip.path.relative_to(root).as_posix(), emotion))
              for clip in test_clips for emotion in emotions if emotion != clip.emotion]
    wanted = [row for row in wanted if row[2].is_file()]
    paths = reconstruct_videos([row[2] for row in wanted], root, cache, reconstruction, progress, "reconstruct twins")
    return {(clip, emotion): FaceParams.load(path) for (clip, emotion, _), path in zip(wanted, paths)
            if path is not None}


def training_actors(config: ExperimentConfig, truths: list) -> tuple[str, ...]:
    """SynthMEAD's actors other than the config's test actors; UserError when a test actor is not in it."""
    actors = sorted({truth.actor for truth in truths})
    missing = sorted(set(config.test_actors) - set(actors))
    if missing:
        raise UserError(f"test actors {', '.join(missing)} are not in {config.data} (its actors: {', '.join(actors)})")
    return tuple(a for a in actors if a not in config.test_actors)


def reconstructed_windows(config: ExperimentConfig, truth_by_path: dict, train_actors: tuple[str, ...],
                          progress: bool) -> tuple:
    """(reconstruction config, the training actors' windows, the test actors' clean clips, their reconstructions'
    paths (None: no face), their windows), reconstructing what the cache lacks."""
    root = Path(config.data)
    reconstruction = load_config(repo_path(config.reconstruct_config), ReconstructionConfig)
    train_clips = scan_mead(root, MeadSelection(train_actors))
    train_windows = build_windows(train_clips, reconstruct_clips(train_clips, root, Path(config.params_cache),
                                                                 reconstruction, progress), root, config.emotions)
    test_clips = [c for c in scan_mead(root, MeadSelection(config.test_actors))
                  if truth_by_path[c.path.relative_to(root).as_posix()].kind == "clean"]
    test_paths = reconstruct_clips(test_clips, root, Path(config.params_cache), reconstruction, progress)
    return reconstruction, train_windows, test_clips, test_paths, build_windows(test_clips, test_paths, root,
                                                                                config.emotions)


def code_judge(config: ExperimentConfig, train_windows, clean: np.ndarray, train_actor: np.ndarray,
               train_neutrals: dict[str, np.ndarray]):
    """The code judge trained on the training actors' clean windows (relative to their neutral codes where the
    config says so; train_actor, train_neutrals: actor_neutral_codes of the windows), cached in
    output_dir/code_judge.pt."""
    baselines = judge_baselines(train_neutrals, config.judge_relative)
    return cached_code_classifier(
        Path(config.output_dir) / "code_judge.pt", train_windows.codes[clean], train_windows.emotion[clean],
        len(config.emotions), hidden=config.judge_hidden,
        baseline=np.stack([baselines[a] for a in train_actor[clean]]))


def run_experiment(config: ExperimentConfig, progress: bool = True) -> dict:
    """Run (or resume) every step; returns and writes output_dir/results.json."""
    from ned_outlier.face.finder import FaceFinder
    from ned_outlier.manipulator.ned.trainer import load_ned_config, train_ned
    from ned_outlier.pipeline import load_edit_config
    from recognition import create_model

    root, out = Path(config.data), Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    truths = read_truth(root)
    truth_by_path = {truth.path: truth for truth in truths}
    train_actors = training_actors(config, truths)
    tables = arm_tables(config, out, truths)
    fingerprint = experiment_fingerprint(config)
    results: dict = {"config": asdict(config), "train_actors": list(train_actors), "fingerprint": fingerprint,
                     "setting_fingerprint": setting_fingerprint(config), **{part: {} for part in RUN_PARTS}}
    previous = out / "results.json"
    finished_runs(config.summary_file, fingerprint, {}, keep=True)  # a summary of another setting stops it at once
    # the scorers of this run's arms measured (again); the others' detection as the earlier files have it
    for name in config.scorers_used:
        lambdas = read_lambda_table(config.scorer(name).lambdas)
        results["scorers"][name] = outlier_detection(lambdas.weights, truths, set(train_actors), lambdas.window)

    reconstruction, train_windows, test_clips, test_paths, test_windows = reconstructed_windows(
        config, truth_by_path, train_actors, progress)
    clean = clean_mask(train_windows, truth_by_path)
    train_actor, train_neutrals = actor_neutral_codes(train_windows)
    test_actor, test_neutrals = actor_neutral_codes(test_windows)  # also for networks trained relative to them
    test_baselines = judge_baselines(test_neutrals, config.judge_relative)
    judge = code_judge(config, train_windows, clean, train_actor, train_neutrals)
    test_baseline = np.stack([test_baselines[a] for a in test_actor])
    results["code_spread"] = code_spread(train_neutrals, train_windows.codes)
    held = clean_mask(test_windows, truth_by_path)
    held_out, held_out_baseline = test_windows.codes[held], test_baseline[held]
    held_out_neutral = np.stack([test_neutrals[a] for a in test_actor])[held]
    train_neutral = np.stack([train_neutrals[a] for a in train_actor[clean]])
    results["code_directions"] = emotion_directions(
        np.concatenate([(train_windows.codes[clean] - train_neutral[:, None]).mean(axis=1),
                        (held_out - held_out_neutral[:, None]).mean(axis=1)]),
        np.concatenate([train_windows.emotion[clean], test_windows.emotion[held]]),
        np.concatenate([train_actor[clean], test_actor[held]]), config.emotions, train_actors)
    held_out_emotion = test_windows.emotion[held]
    # finished runs of this setting, with these reconstructions and this judge (curves: the judge's target accuracy
    # on held-out windows per epoch)
    inputs = derived_inputs_fingerprint(judge, train_windows.codes, test_windows.codes)
    results["arm_fingerprints"] = {arm: arm_fingerprint(fingerprint + inputs, table) for arm, table in tables.items()}
    for earlier, keep in ((config.summary_file, True), (previous, False)):
        merge_runs(results, finished_runs(earlier, fingerprint, results["arm_fingerprints"], keep),
                   config.latent_draws)
    runs, curves = results["runs"], results["curves"]
    hits = judge.predict(held_out, held_out_baseline) == held_out_emotion
    results["code_judge"] = {"train_windows": int(clean.sum()), "test_windows": int(held.sum()),
                             "relative": config.judge_relative, "test_accuracy": float(np.mean(hits)),
                             "per_emotion": {name: float(np.mean(hits[held_out_emotion == k]))
                                             for k, name in enumerate(config.emotions)
                                             if (held_out_emotion == k).any()}}

    loaded = [(clip, FaceParams.load(path)) for clip, path in zip(test_clips, test_paths) if path is not None]
    twins = load_twins([clip for clip, _ in loaded], root, Path(config.params_cache), config.emotions,
                       reconstruction, progress)
    results["twins"] = len(twins)
    edit = load_edit_config(repo_path(load_synth_config(repo_path(config.synthmead_config)).edit_config))
    edit = replace(edit, mouth=replace(edit.mouth, enabled=False))  # rendered as SynthMEAD draws, without donors
    fer, faces = create_model("fer2013-minixception"), FaceFinder()
    for seed in config.seeds:
        for arm in config.arms:
            key = run_key(arm, seed)
            if judged(results, key, config.latent_draws):
                continue
            folder = run_folder(out, key, results["arm_fingerprints"][arm])
            draws = latent_draw_seeds(seed, config.latent_draws)
            if key in runs and (folder / "model.safetensors").is_file():
                # judged with another number of latent draws: its kept model judged again; its rendered measures
                # stay, as they use the first draw, the seed, whatever the number
                runs[key] = runs[key] | code_measures(folder / "model.safetensors", draws, loaded, judge,
                                                      config.emotions, twins, test_baselines, test_neutrals)
                results["run_latent_draws"][key] = config.latent_draws
                _save(results, config, previous)
                continue
            overrides = [f"data.root={root}", f"data.cache={config.params_cache}",
                         f"data.train_actors=[{', '.join(train_actors)}]", "data.val_actors=[]",
                         f"data.lambdas={tables[arm] or 'null'}",
                         f"data.emotions=[{', '.join(config.emotions)}]", f"train.seed={seed}",
                         f"train.output_dir={folder}",
                         *config.training_overrides]
            training = load_ned_config(repo_path(config.training_config), overrides)
            trained = train_ned(training, progress=progress, evaluate=lambda nets, seed=seed: {
                "eval/target_accuracy": window_target_accuracy(nets, held_out, judge, seed, held_out_baseline,
                                                               held_out_neutral)})
            curves[key] = {
                "iteration": [epoch["step"] for epoch in trained.history],
                "target_accuracy": [epoch["eval/target_accuracy"] for epoch in trained.history]}
            with tempfile.TemporaryDirectory(prefix="ned-experiment-") as work:
                runs[key] = judge_model(trained.model_path, draws, loaded, judge, config, fer, faces, edit,
                                        Path(work), twins, test_baselines, test_neutrals)
            results["run_fingerprints"][key] = results["arm_fingerprints"][arm]
            results["run_latent_draws"][key] = config.latent_draws
            _save(results, config, previous)
    _save(results, config, previous)
    if curves:
        write_learning_curves(curves, len(config.emotions), out / "learning_curves.png")
    return results


def latent_spread(config: ExperimentConfig, latents: int, progress: bool = True) -> dict[str, list[float]]:
    """run key -> the code judge's target accuracy of that finished run's model (output_dir/results.json) with each
    of its first `latents` latent draws (latent_draw_seeds; with the config's latent_draws their mean is the run's
    measure), without rendering: how much of a run's measure is its latent draws rather than its model."""
    from tqdm.auto import tqdm

    root, out = Path(config.data), Path(config.output_dir)
    results_file = out / "results.json"
    if not results_file.is_file():
        raise UserError(f"{results_file} is missing: the experiment has no finished runs there to judge again")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    truths = read_truth(root)
    truth_by_path = {truth.path: truth for truth in truths}
    _, train_windows, test_clips, test_paths, test_windows = reconstructed_windows(
        config, truth_by_path, training_actors(config, truths), progress)
    judge = code_judge(config, train_windows, clean_mask(train_windows, truth_by_path),
                       *actor_neutral_codes(train_windows))
    _, test_neutrals = actor_neutral_codes(test_windows)
    baselines = judge_baselines(test_neutrals, config.judge_relative)
    loaded = [(clip, FaceParams.load(path)) for clip, path in zip(test_clips, test_paths) if path is not None]
    spread = {}
    for key in tqdm(sorted(results["runs"]), desc="judge runs again", disable=not progress):
        model = run_folder(out, key, results["run_fingerprints"][key]) / "model.safetensors"
        if not model.is_file():
            LOG.warning("run %s: its model %s is missing: not judged again", key, model)
            continue
        spread[key] = [code_measures(model, [draw], loaded, judge, config.emotions, None, baselines,
                                     test_neutrals)["code_judge_target_accuracy"]
                       for draw in latent_draw_seeds(_seed_of(key), latents)]
    return spread


def pending_runs(config: ExperimentConfig, finished: dict) -> list[ExperimentConfig]:
    """One config (one arm, one seed) per run of `config` that `finished` (results, RUN_PARTS) has not judged with
    the config's latent draws (to train, or to judge again), seed by seed, so that the runs a stopped experiment has
    done are whole seeds of every arm, each paired with plain NED's."""
    return [replace(config, arms=(arm,), seeds=(seed,)) for seed in config.seeds for arm in config.arms
            if not judged(finished, run_key(arm, seed), config.latent_draws)]


def run_in_parallel(config: ExperimentConfig, jobs: int, threads: int = 1, progress: bool = True) -> dict:
    """run_experiment with its runs spread over `jobs` processes of `threads` CPU threads each (on 2 cores two
    processes of one thread train two runs faster than one process of two threads trains them in turn): first the
    inputs, judge and finished runs (run_experiment without seeds), then every pending run in its own process
    (pending_runs; each writes its results under the experiment's lock), then run_experiment again, which finds every
    run done and writes the table's results."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    todo = pending_runs(config, run_experiment(replace(config, seeds=()), progress))
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        running = {pool.submit(_run_alone, job, threads): run_key(job.arms[0], job.seeds[0]) for job in todo}
        for done in tqdm(as_completed(running), total=len(running), desc=f"runs, {jobs} at once",
                         disable=not progress or not running):
            done.result()  # a failed run stops the experiment with its error
            LOG.info("run %s finished", running[done])
    return run_experiment(config, progress)


def _run_alone(config: ExperimentConfig, threads: int) -> None:
    """One process of run_in_parallel: run_experiment on `threads` CPU threads, without progress bars."""
    import torch

    from ned_outlier.cli import logger_level

    torch.set_num_threads(threads)
    with logger_level("ned_outlier.reconstruction.reconstructor", logging.WARNING):  # as the script's own process
        run_experiment(config, progress=False)


def run_folder(out: Path, key: str, fingerprint: str) -> Path:
    """Where run `key` ("<arm>/seed<N>") of the setting `fingerprint` (its arm_fingerprint) trains and checkpoints:
    out/<arm>/seed<N>-<12 hex of the fingerprint>. A run of another setting (another training config or override,
    another lambda table) in the same output folder gets its own folder, so it never resumes this one's weights."""
    return out / f"{key}-{fingerprint[:12]}"


def arm_tables(config: ExperimentConfig, out: Path, truths: list) -> dict[str, Path | None]:
    """arm -> the lambda table it trains on (None: plain NED): a scorer's own table, or one written into out/<arm>/
    from it (the control's mean, the oracle's truth)."""
    tables = {}
    for arm in config.arms:
        if arm == NO_LAMBDA:
            tables[arm] = None
        elif arm == ORACLE:
            tables[arm] = oracle_table(config.scorer(next(iter(config.scorers))).lambdas, out / arm, truths)
        else:
            kind, scorer = arm.split("_", 1)
            lambdas = config.scorer(scorer).lambdas
            tables[arm] = Path(lambdas) if kind == "lambda" else uniform_table(lambdas, out / arm)
    return tables


def experiment_fingerprint(config: ExperimentConfig) -> str:
    """sha256 of what decides every arm's results: SynthMEAD's files (truth.csv and every clip's bytes, so that a
    change of how its frames are drawn counts, not only of its configs), the training, SynthMEAD and reconstruction
    configs and the experiment's own settings (not its paths, seeds, scorers or arms). Each arm adds its lambda
    table, the reconstructed codes and the judge (arm_fingerprint, derived_inputs_fingerprint). Runs of another
    fingerprint are never reused."""
    import hashlib

    root = Path(config.data)
    digest = hashlib.sha256()
    for clip in sorted(root.rglob("*.mp4")):
        digest.update(clip.relative_to(root).as_posix().encode())
        digest.update(hashlib.sha256(clip.read_bytes()).digest())
    for part in _setting_parts(config):
        digest.update(part)
    return digest.hexdigest()


def setting_fingerprint(config: ExperimentConfig) -> str:
    """sha256 of experiment_fingerprint's parts less SynthMEAD's clip bytes, plus the edit config SynthMEAD draws
    with: what one setting is on every machine. The same configs make other clip bytes on a CPU whose float paths
    differ (oneDNN's instruction set alone changed 70 of 84 clips of a small set, docs/ned.md), so a summary of this
    setting with another experiment_fingerprint was made from the same configs on another machine, or with another
    drawing of the frames (local_summary)."""
    import hashlib

    digest = hashlib.sha256()
    for part in _setting_parts(config):
        digest.update(part)
    digest.update(repo_path(load_synth_config(repo_path(config.synthmead_config)).edit_config).read_bytes())
    return digest.hexdigest()


def _setting_parts(config: ExperimentConfig) -> list[bytes]:
    """truth.csv, the training, SynthMEAD and reconstruction configs and the experiment's own settings, as bytes."""
    parts = [path.read_bytes() for path in (Path(config.data) / "truth.csv", repo_path(config.training_config),
                                            repo_path(config.synthmead_config), repo_path(config.reconstruct_config))]
    settings = (config.test_actors, config.emotions, config.render_clips, config.judge_relative, config.judge_hidden,
                config.training_overrides)
    return [*parts, repr(settings).encode()]


def local_summary(config: ExperimentConfig) -> tuple[ExperimentConfig, Path | None]:
    """Where this machine's runs of `config` go, and the summary they are to be compared with. `config` and None
    where its summary_file is missing or holds runs of this very experiment_fingerprint; where it holds this
    setting's runs made from other clip bytes (setting_fingerprint the same, experiment_fingerprint not), `config`
    with summary_file OUTPUT_DIR/summary.json (the committed file is never overwritten) and that file's path; a
    UserError where it holds another setting's. Needs SynthMEAD made (prepare_synthmead), not its lambda tables,
    so that a summary of another setting stops the experiment before the scorers' hours."""
    if not config.summary_file or not Path(config.summary_file).is_file():
        return config, None
    committed = Path(config.summary_file)
    earlier = json.loads(committed.read_text(encoding="utf-8"))
    if earlier.get("fingerprint") == experiment_fingerprint(config):
        return config, None
    if earlier.get("setting_fingerprint") != setting_fingerprint(config):
        raise UserError(f"{committed} holds the runs of another setting (its configs or truth.csv differ): "
                        "--report prints its table; give this one its own file (--set summary_file=PATH, or null "
                        "for none)")
    here = Path(config.output_dir) / "summary.json"
    LOG.warning("%s holds this setting's runs made from other SynthMEAD clip bytes (the same configs on a CPU whose "
                "float paths differ, docs/ned.md, or another drawing of its frames): they are not reused; this "
                "machine's runs go to %s and are compared with them at the end", committed, here)
    return replace(config, summary_file=str(here)), committed


def summary_comparison(results: dict, reference: str | Path) -> str:
    """A Markdown table of each arm's target accuracy and paired code error here (results' summary) beside the
    summary at `reference` (committed_summary's file, made from other clip bytes): mean ± sd over each side's seeds,
    and here minus there; then both judges' accuracy on clean held-out windows."""
    there = json.loads(Path(reference).read_text(encoding="utf-8"))
    lines = [f"Against {reference} (this setting, made from other SynthMEAD clip bytes):", "",
             "| arm | seeds here / there | target accuracy here | there | here - there | paired code error here "
             "| there | here - there |", "|---" * 8 + "|"]
    for arm, measures in results["summary"].items():
        if arm not in there.get("arms", {}):
            continue
        theirs, cells = there["arms"][arm], []
        for key in ("code_judge_target_accuracy", "code_error"):
            mine = measures[key]
            cells += [f"{mine['mean']:.3f} ± {mine['std']:.3f}",
                      f"{theirs[key + '_mean']:.3f} ± {theirs[key + '_sd']:.3f}",
                      f"{mine['mean'] - theirs[key + '_mean']:+.3f}"]
        lines.append(f"| {arm_name(arm)} | {len(measures['code_judge_target_accuracy']['values'])} / "
                     f"{theirs['seeds']} | " + " | ".join(cells) + " |")
    lines += ["", f"code judge accuracy on clean test windows here {results['code_judge']['test_accuracy']:.3f}, "
              f"there {there['code_judge']['test_accuracy']:.3f}."]
    return "\n".join(lines)


def derived_inputs_fingerprint(judge, *codes: np.ndarray) -> str:
    """sha256 of what the experiment derives from SynthMEAD before it trains: the reconstructed (N, T, C) codes of
    its windows and the code judge's weights. Both are deterministic on one machine and thread count, but may differ
    in their last bits on another, and a run judged by another judge or trained on other codes is not paired with
    this setting's runs; arm_fingerprint adds this to the experiment's fingerprint."""
    import hashlib

    digest = hashlib.sha256()
    for array in codes:
        digest.update(np.ascontiguousarray(array, np.float32).tobytes())
    for name, tensor in sorted(judge.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def arm_fingerprint(fingerprint: str, table: str | Path | None) -> str:
    """sha256 of the experiment's fingerprint and what an arm trains on of its lambda table (None: none): each
    window's lambda, the window and the hop (not the file's other columns, so that the oracle's table is the same
    whichever scorer's windows it reweights)."""
    import hashlib

    digest = hashlib.sha256(fingerprint.encode())
    if table is not None:
        lambdas = read_lambda_table(table)
        digest.update(repr((lambdas.window, lambdas.hop, sorted(lambdas.weights.items()))).encode())
    return digest.hexdigest()


def finished_runs(path: str | Path | None, fingerprint: str, arm_fingerprints: dict[str, str],
                  keep: bool = False) -> dict:
    """The RUN_PARTS of the results file at `path` (results.json or the committed summary) made with this experiment
    fingerprint, less the runs of an arm of `arm_fingerprints` made with another
    lambda table, reconstruction or judge (runs of arms not in it are kept as they are); empty when the file is
    missing, and with a warning when it or a run is of another setting, or, with `keep` (a file that must not be
    overwritten: the committed summary), a UserError. A run of a file from before `latent_draws` was judged with
    one draw."""
    empty = {part: {} for part in RUN_PARTS}
    if not path or not Path(path).is_file():
        return empty
    earlier = json.loads(Path(path).read_text(encoding="utf-8"))
    if earlier.get("fingerprint") != fingerprint:
        if keep:
            raise UserError(f"{path} holds the runs of another setting (data or configs differ; SynthMEAD's clip "
                            "bytes also differ on a CPU whose float paths differ, docs/ned.md): --report prints its "
                            "table; give this one its own file (--set summary_file=PATH, or null for none)")
        LOG.warning("%s holds runs of another setting (data or configs differ): not reused", path)
        return empty
    kept = {**empty, "scorers": dict(earlier.get("scorers") or {})}
    stored = earlier.get("run_fingerprints", {})
    for key, run in earlier.get("runs", {}).items():
        arm = _arm_of(key)
        if arm in arm_fingerprints and stored.get(key) != arm_fingerprints[arm]:
            if keep:
                raise UserError(f"{path}: its run {key} was made with another lambda table, reconstruction or judge "
                                f"than {arm}'s now: remove that arm's runs from it, or give this setting its own "
                                "summary_file")
            LOG.warning("%s: run %s was made with another lambda table, reconstruction or judge: not reused", path,
                        key)
            continue
        kept["runs"][key] = run
        kept["run_fingerprints"][key] = stored.get(key)
        kept["run_latent_draws"][key] = earlier.get("run_latent_draws", {}).get(key, 1)
        if key in earlier.get("curves", {}):
            kept["curves"][key] = earlier["curves"][key]
    return kept


def merge_runs(results: dict, earlier: dict, latent_draws: int) -> None:
    """Add finished_runs' RUN_PARTS to `results`, keeping those it already has, except a run `results` has judged
    with another number of latent draws than `latent_draws` and `earlier` with that number (another process judged
    it again meanwhile), which `earlier`'s replaces."""
    stale = [key for key in earlier["runs"] if judged(earlier, key, latent_draws) and key in results.get("runs", {})
             and not judged(results, key, latent_draws)]
    for part in RUN_PARTS:
        for key, value in earlier[part].items():
            if key in stale:
                results.setdefault(part, {})[key] = value
            else:
                results.setdefault(part, {}).setdefault(key, value)


def judged(results: dict, key: str, latent_draws: int) -> bool:
    """Whether `results` (RUN_PARTS) has run `key`, judged with `latent_draws` latent draws."""
    return key in results.get("runs", {}) and results.get("run_latent_draws", {}).get(key, 1) == latent_draws


def committed_summary(results: dict) -> dict:
    """The small summary kept in git (docs/results/ned_lambda.json): per arm the mean and standard deviation of
    every measure over its seeds, the per-seed runs and curves (so that a later session resumes), the judge and,
    where lambda was scored, each scorer's outlier detection."""
    arms = {}
    for arm, measures in results.get("summary", {}).items():
        arms[arm] = {f"{measure}_{stat}": values[key] for measure, values in measures.items()
                     for stat, key in (("mean", "mean"), ("sd", "std"))}
        arms[arm]["seeds"] = len(next(iter(measures.values()))["values"])
    paired = {arm: {f"{measure}_minus_plain_{stat}": values[key] for measure, values in measures.items()
                    for stat, key in (("mean", "mean"), ("sd", "std"))}
              for arm, measures in paired_differences(results["runs"]).items()}
    return {"fingerprint": results["fingerprint"], "setting_fingerprint": results.get("setting_fingerprint"),
            "arms": arms, "paired_vs_plain": paired,
            "code_judge": results["code_judge"], "scorers": results.get("scorers") or None,
            "code_spread": results.get("code_spread"), "code_directions": results.get("code_directions"),
            "runs": results["runs"], "curves": results["curves"],
            "run_fingerprints": results.get("run_fingerprints", {}),
            "run_latent_draws": results.get("run_latent_draws", {})}


def write_learning_curves(curves: dict, n_emotions: int, path: Path) -> Path:
    """path: every run's judge target accuracy against its iterations (results.json's `curves`)."""
    from ned_outlier.manipulator.ned.plots import plot_learning_curves

    figure = plot_learning_curves({key: (c["iteration"], c["target_accuracy"]) for key, c in sorted(curves.items())},
                                  chance=1 / n_emotions, goal=0.7)
    with atomic_output(path) as temp:
        figure.savefig(temp, format="png", dpi=120)
    return path


def uniform_table(lambdas: str, folder: Path) -> Path:
    """folder/windows.csv: a copy of the lambda table with every window's lambda replaced by the table's mean lambda,
    and the table's scores.json beside it (its window and hop, with the mean recorded as `uniform_lambda`)."""
    def mean(rows):
        value = float(np.mean([float(row["lambda"]) for row in rows]))
        return [value] * len(rows), {"uniform_lambda": value}

    return _rewritten_table(lambdas, folder, mean)


def oracle_table(lambdas: str, folder: Path, truths: list) -> Path:
    """folder/windows.csv: the lambda table's windows weighted by SynthMEAD's truth instead of a scorer: 0 for a
    window that truth.csv calls an outlier (ambiguous or wrongly labelled clips, neutral onsets and offsets), 1
    for every other: perfect outlier suppression, the most that lambda can buy."""
    by_path = {truth.path: truth for truth in truths}
    window = read_lambda_table(lambdas).window

    def truth_weights(rows):
        return [0.0 if by_path[row["path"]].window_is_outlier(int(row["start"]), window) else 1.0
                for row in rows], {"oracle": "SynthMEAD truth.csv"}

    return _rewritten_table(lambdas, folder, truth_weights)


def _rewritten_table(lambdas: str, folder: Path, weights) -> Path:
    """folder/windows.csv: the lambda table with lambda replaced by `weights(rows)`'s values, and its scores.json
    beside it with `weights`' notes added."""
    import csv

    source = Path(lambdas)
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    values, notes = weights(rows)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "windows.csv"
    with atomic_output(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([{**row, "lambda": f"{value:.6f}"} for row, value in zip(rows, values)])
    summary = json.loads(source.with_name(SCORES_SUMMARY).read_text(encoding="utf-8"))
    with atomic_output(folder / SCORES_SUMMARY) as temp:
        temp.write_text(json.dumps(summary | notes, indent=1) + "\n")
    return path


def summarise_runs(runs: dict) -> dict:
    """arm -> measure -> {"mean", "std", "values"} over every seed the runs hold, in seed order, arms in arm_order."""
    summary = {}
    for arm in arm_order(_arms_of(runs)):
        rows = [runs[run_key(arm, seed)] for seed in _seeds_of(runs) if run_key(arm, seed) in runs]
        if not rows:
            continue
        summary[arm] = {measure: _statistics([r[measure] for r in rows]) for measure in rows[0]}
    return summary


PAIRED = ("code_judge_target_accuracy", "code_error")  # measures compared seed by seed with plain NED


def paired_differences(runs: dict) -> dict:
    """arm -> measure -> {"mean", "std", "values"} of (the arm's run - plain NED's run) over the seeds both have run,
    for the PAIRED measures (the same seed means the same initial weights, batches and latents)."""
    differences = {}
    for arm in arm_order(set(_arms_of(runs)) - {NO_LAMBDA}):
        pairs = [(runs[run_key(arm, seed)], runs[run_key(NO_LAMBDA, seed)]) for seed in _seeds_of(runs)
                 if run_key(arm, seed) in runs and run_key(NO_LAMBDA, seed) in runs]
        if pairs:
            differences[arm] = {measure: _statistics([run[measure] - plain[measure] for run, plain in pairs])
                                for measure in PAIRED}
    return differences


def run_key(arm: str, seed: int) -> str:
    """The key "<arm>/seed<N>" of one run in the results and the summary."""
    return f"{arm}/seed{seed}"


def _arm_of(key: str) -> str:
    """The arm of a run keyed "<arm>/seed<N>" (run_key's inverse, first half)."""
    return key.rsplit("/seed", 1)[0]


def _arms_of(runs: dict) -> set[str]:
    """The arms of runs keyed "<arm>/seed<N>"."""
    return {_arm_of(key) for key in runs}


def _seed_of(key: str) -> int:
    """The seed of a run keyed "<arm>/seed<N>" (run_key's inverse, second half)."""
    return int(key.rsplit("/seed", 1)[1])


def _seeds_of(runs: dict) -> tuple[int, ...]:
    """The seeds of runs keyed "<arm>/seed<N>"."""
    return tuple(sorted({_seed_of(key) for key in runs}))


def _statistics(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}


def _save(results: dict, config: ExperimentConfig, path: Path) -> None:
    """results (with its summary over every seed it has runs of, not only the config's: a process of
    run_in_parallel trains one seed) to `path`, and its committed summary to config.summary_file.
    Runs of this setting that another process has written there meanwhile (e.g. `--set seeds=[1]` beside
    `--set seeds=[0]` on the same output_dir) are merged in first, under a lock, so processes can share the files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for earlier in (path, config.summary_file):
            merge_runs(results, finished_runs(earlier, results["fingerprint"], results.get("arm_fingerprints", {})),
                       config.latent_draws)
        results["summary"] = summarise_runs(results["runs"])
        _write(path, results)
        if config.summary_file:
            _write(Path(config.summary_file), committed_summary(results))


def _write(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(results, indent=1, default=float) + "\n")


def summary_table(path: str | Path | None) -> str:
    """The table of a committed summary (committed_summary's file), recomputed from its per-seed runs."""
    if path is None:
        raise UserError("the config has no summary_file to report")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no experiment summary at {path}: run scripts/run_ned_experiment.py first")
    committed = json.loads(path.read_text(encoding="utf-8"))
    results = {"summary": summarise_runs(committed["runs"]), "code_judge": committed["code_judge"],
               "runs": committed["runs"]}
    if committed.get("scorers"):
        results["scorers"] = committed["scorers"]
    return table(results)


def table(results: dict) -> str:
    """The README's Markdown table of a results.json."""
    measures = (("code_judge_target_accuracy", "code judge: target accuracy"),
                ("fer_target_rate", "fer2013 on rendered frames: target rate"),
                ("fer_target_probability", "fer2013 on rendered frames: mean p(target)"),
                ("mouth_r", "mouth r (generator's mouth code)"),
                ("code_error", "paired code error against the twin (lower is better)"),
                ("source_code_error", "the same for the unedited source (reference)"))
    summary = results["summary"]
    arms = list(summary)
    lines = ["| measure | " + " | ".join(arm_name(arm) for arm in arms) + " |", "|---" * (len(arms) + 1) + "|"]
    for key, name in measures:
        cells = [f"{summary[arm][key]['mean']:.3f} ± {summary[arm][key]['std']:.3f}"
                 if key in summary[arm] else "-" for arm in arms]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    paired = paired_differences(results.get("runs", {}))
    if paired:
        lines += ["| paired difference from plain NED, same seed (mean ± sd) | "
                  + " | ".join(arm_name(arm) for arm in paired) + " |", "|---" * (len(paired) + 1) + "|"]
        for key, name in (("code_judge_target_accuracy", "target accuracy"), ("code_error", "paired code error")):
            cells = [f"{paired[arm][key]['mean']:+.3f} ± {paired[arm][key]['std']:.3f} "
                     f"({', '.join(f'{v:+.3f}' for v in paired[arm][key]['values'])})" for arm in paired]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    for scorer, detection in (results.get("scorers") or {}).items():
        kinds = ", ".join(f"{kind} {values['recall']:.3f}" for kind, values in detection.get("per_kind", {}).items())
        lines.append(f"{scorer}'s lambda < 1 as an outlier flag: precision {detection['precision']:.3f}, recall "
                     f"{detection['recall']:.3f} ({kinds or 'no outliers'}), F1 {detection['f1']:.3f} "
                     f"({detection['flagged']} flagged, {detection['true_outliers']} true outliers among "
                     f"{detection['windows']} training windows)"
                     + (f"; mean lambda {detection['mean_lambda_outliers']:.3f} on the outliers, "
                        f"{detection['mean_lambda_others']:.3f} on the others, ranking AUC "
                        f"{detection['ranking_auc']:.3f}." if "ranking_auc" in detection else "."))
    lines.append(f"code judge accuracy on clean test windows {results['code_judge']['test_accuracy']:.3f}.")
    directions = results.get("code_directions")
    if directions:
        lines.append("Each emotion's code direction, test actors against the training actors' (cosine; the training "
                     "actors' median against the others in brackets): " + "; ".join(
                         f"{name} " + " ".join(f"{a} {c:+.2f}" for a, c in entry["actors"].items())
                         + f" ({entry['train_median']:+.2f})" for name, entry in directions.items()) + ".")
    return "\n".join(lines)
