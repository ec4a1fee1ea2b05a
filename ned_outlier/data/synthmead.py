"""SynthMEAD: MEAD-like emotional talking clips made here from real face photos, with outliers whose truth is known.

    config = load_synth_config("configs/ned/synthmead.yaml")
    built = build_synthmead(config, Path("out/synthmead"))     # MEAD layout + truth.csv; built.truths, built.skipped

Every identity (a face of a photo: the astronaut, each person of the group photo, LFW faces, chosen Pexels frames) is
reconstructed once and animated: per frame, the expression code moves from the face's own to the emotion's FACS
prototype (configs/edit/default.yaml, the `facs` manipulator's) by intensity x envelope(t), and the mouth code
follows a speech-like signal (jaw drop and lip parting at 3-5 syllables a second, occasional lip presses) plus the
prototype's own jaw drop. The frames are rendered by the editing path's warp renderer (no mouth retrieval: a still has
no donors) and written as <root>/<actor>/video/front/<emotion>/level_3/<id>.mp4, one actor per identity.

Clips are clean, or one of three controlled kinds of outlier (fractions in the config), recorded in truth.csv:
    onset_offset  long neutral stretches at the start and end (a real clip's onset and offset), still labelled with
                  the emotion: the windows there are outliers, the rest of the clip is not;
    ambiguous     the whole clip at low intensity (a weakly expressed sample);
    wrong_label   rendered as one emotion, filed under another.
truth.csv: path, actor, label (the folder), rendered (the emotion shown), intensity, kind, frames, and the expressive
span [onset_end, offset_start) where the envelope is at least half its peak. A window is a true outlier when its clip
is ambiguous or wrongly labelled, or (any clip) when most of its frames lie outside the expressive span; neutral
clips are never outliers.
Twins (config `twins`: the experiment's test actors): each clean clip of those actors again in every other emotion,
with the same identity and speech, under root/twins/ (twin_path); an edit of the clip toward an emotion is compared
with its twin there, as NED's successors compare an edit with the same sentence acted in the target emotion.
"""

from __future__ import annotations

import csv
import logging
import re
import tempfile
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ned_outlier.config import from_dict, load_config, repo_path
from ned_outlier.data.face_sources import Face, SourceConfig, fit_face, media_path, photo_faces
from ned_outlier.errors import UserError
from ned_outlier.io.atomic import atomic_output
from ned_outlier.io.video import VideoReader, VideoWriter
from ned_outlier.manipulator.facs import FacsManipulator, TargetCodes
from ned_outlier.pipeline import FrameEditor, load_edit_config
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig
from ned_outlier.labels import EMOTIONS

LOG = logging.getLogger(__name__)

KINDS = ("clean", "onset_offset", "ambiguous", "wrong_label")
TWINS = "twins"  # the folder of the twins under the set's root (not an actor: it has no video/ folder)
LEVEL = 3  # every clip is filed at MEAD's level 3 (NED's choice); neutral at level 1 as in MEAD


@dataclass(frozen=True)
class MotionConfig:
    """frames per clip at fps; onset: frames of the ramp in and out of a clean clip (each end); outlier_onset: the
    fraction of an onset_offset clip that is neutral at each end; ambiguous_intensity: an ambiguous clip's peak;
    syllable_rate: speech rate range (Hz); jaw: jaw-drop amplitude range (AU intensity); press_probability: chance
    per syllable of a lip press (AU24) instead of an opening."""

    frames: int = 40
    fps: int = 25
    onset: int = 4
    outlier_onset: float = 0.35
    ambiguous_intensity: tuple[float, float] = (0.1, 0.25)
    syllable_rate: tuple[float, float] = (3.0, 5.0)
    jaw: tuple[float, float] = (0.4, 1.0)
    press_probability: float = 0.15

    def __post_init__(self) -> None:
        if self.frames < 10 or self.fps < 1 or not 0 <= self.outlier_onset < 0.5:
            raise ValueError("frames must be >= 10, fps >= 1, outlier_onset in [0, 0.5)")


@dataclass(frozen=True)
class SynthConfig:
    """Every setting (configs/ned/synthmead.yaml). sources: name -> {media, limit, frame} as face_sources'
    SourceConfig; a video source gives its `frame`-th frame as a photo. outliers: kind ->
    fraction of the emotional clips (the rest are clean). twins: actors (S001, ...) whose clean clips also get a
    twin in every other emotion (twin_path): the ground truth of an emotion edit of that clip."""

    seed: int = 0
    emotions: tuple[str, ...] = EMOTIONS[:7]
    clips_per_emotion: int = 1
    size: int = 256
    region_margin: float = 1.0
    min_photo_side: int = 256
    motion: MotionConfig = field(default_factory=MotionConfig)
    outliers: dict = field(default_factory=lambda: {"onset_offset": 0.2, "ambiguous": 0.1, "wrong_label": 0.1})
    sources: dict = field(default_factory=dict)
    twins: tuple[str, ...] = ()
    edit_config: str = "configs/ned/synthmead_edit.yaml"  # frozen: the editor's improvements leave the data as it is
    reconstruct_config: str = "configs/reconstruct/default.yaml"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.outliers) - set(KINDS[1:]))
        if unknown or sum(self.outliers.values()) > 1 or min(self.outliers.values(), default=0) < 0:
            raise ValueError(f"outliers: fractions of {', '.join(KINDS[1:])} summing to at most 1, got {self.outliers}")
        if "neutral" not in self.emotions or self.clips_per_emotion < 1 or not self.sources:
            raise ValueError("emotions must include neutral, clips_per_emotion >= 1, and sources must not be empty")

    @property
    def region_size(self) -> int:  # the photo cut-out is the rendered frame
        return self.size


@dataclass(frozen=True)
class ClipTruth:
    path: str
    actor: str
    label: str
    rendered: str
    intensity: float
    kind: str
    frames: int
    onset_end: int
    offset_start: int

    def window_is_outlier(self, start: int, length: int) -> bool:
        """Ground truth for the window [start, start + length)."""
        if self.label == "neutral":
            return False
        if self.kind in ("ambiguous", "wrong_label"):
            return True
        inside = max(0, min(start + length, self.offset_start) - max(start, self.onset_end))
        return inside * 2 < length


def outlier_detection(lambdas: dict[tuple[str, int], float], truths: list[ClipTruth], actors: set[str],
                      window: int) -> dict:
    """Precision / recall / F1 of lambda < 1 as an outlier flag against the truth, over the emotional windows of
    `actors` that have a lambda (lambdas: (clip path relative to the root, start) -> lambda, as LambdaTable's); per
    outlier kind (onset_offset: the neutral ends, ambiguous: weakly expressed, wrong_label) the recall on its
    outlier windows; the false-alarm rate on the windows that are not outliers; and, as lambda is a soft weight,
    the mean lambda of the outliers and of the others, and `ranking_auc`: the probability that a window that is not
    an outlier has a higher lambda than one that is (ties count half; 0.5 = no better than chance)."""
    by_path = {truth.path: truth for truth in truths}
    flagged, actual, kinds, weights = [], [], [], []
    for (path, start), lam in lambdas.items():
        truth = by_path.get(path)
        if truth is None or truth.actor not in actors or truth.label == "neutral" or not np.isfinite(lam):
            continue
        flagged.append(lam < 1.0)
        actual.append(truth.window_is_outlier(start, window))
        kinds.append(truth.kind)
        weights.append(lam)
    flagged, actual, kinds = np.array(flagged, bool), np.array(actual, bool), np.array(kinds, str)
    weights = np.array(weights, np.float64)
    hits = float(np.sum(flagged & actual))
    precision = hits / max(flagged.sum(), 1)
    recall = hits / max(actual.sum(), 1)
    per_kind = {kind: {"outlier_windows": int((actual & (kinds == kind)).sum()),
                       "recall": float(flagged[actual & (kinds == kind)].mean())}
                for kind in sorted(set(kinds[actual]))}
    return {"windows": int(len(flagged)), "true_outliers": int(actual.sum()), "flagged": int(flagged.sum()),
            "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / max(precision + recall, 1e-12), "per_kind": per_kind,
            "false_alarm_rate": float(flagged[~actual].mean()) if (~actual).any() else float("nan"),
            "mean_lambda_outliers": float(weights[actual].mean()) if actual.any() else float("nan"),
            "mean_lambda_others": float(weights[~actual].mean()) if (~actual).any() else float("nan"),
            "ranking_auc": ranking_auc(weights[~actual], weights[actual])}


def ranking_auc(higher: np.ndarray, lower: np.ndarray) -> float:
    """P(a value of `higher` > a value of `lower`), ties counted half (the Mann-Whitney U over the product of the
    sizes); NaN when either is empty."""
    if not len(higher) or not len(lower):
        return float("nan")
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(higher, lower).statistic / (len(higher) * len(lower)))


def load_synth_config(path: str | Path) -> SynthConfig:
    return load_config(path, SynthConfig)


def envelope(frames: int, ramp: int, neutral: int) -> np.ndarray:
    """(frames,) in [0, 1]: 0 for `neutral` frames at each end, a linear ramp of `ramp` frames, 1 in between."""
    t = np.arange(frames, dtype=np.float64)
    distance = np.minimum(t - neutral + 1, frames - neutral - t)  # frames into the expressive part from either end
    return np.clip(distance / max(ramp, 1), 0.0, 1.0)


def speech(frames: int, fps: int, motion: MotionConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like mouth motion: (frames,) jaw opening >= 0 and (frames,) lip press >= 0, one syllable after another
    (each a raised-cosine bump of random length and height; a few are lip presses with the jaw shut)."""
    jaw, press = np.zeros(frames), np.zeros(frames)
    position = rng.uniform(0, fps / motion.syllable_rate[0])  # silence before the first syllable
    while position < frames:
        length = fps / rng.uniform(*motion.syllable_rate)
        t = np.arange(frames)
        bump = np.where((t >= position) & (t < position + length),
                        0.5 - 0.5 * np.cos(2 * np.pi * (t - position) / length), 0.0)
        target = press if rng.random() < motion.press_probability else jaw
        target += rng.uniform(*motion.jaw) * bump
        position += length
    return jaw, press


def animate(source: FaceParams, manipulator: FacsManipulator, emotion: str, intensity: float, weight: np.ndarray,
            jaw: np.ndarray, press: np.ndarray) -> TargetCodes:
    """Target codes (T, E), (T, M) of the still `source` (one frame) animated: expression toward the prototype of
    `emotion` by intensity * weight(t); mouth = the still's + the prototype's mouth scaled alike + speech."""
    goal_expression, goal_mouth = manipulator.prototype(emotion)
    amount = (intensity * weight)[:, None]
    expression = (1 - amount) * source.expression[:1] + amount * goal_expression
    expression[:, manipulator.keep] = source.expression[0, manipulator.keep]
    mouth = source.mouth[:1] + amount * goal_mouth
    names = source.schema.mouth_names
    for name, signal in (("AU26", jaw), ("AU25", np.minimum(2 * jaw, 1.5)), ("AU24", press)):
        if name in names:
            mouth[:, names.index(name)] += signal
    return TargetCodes(expression.astype(np.float32), mouth.astype(np.float32))


def repeat_frame(params: FaceParams, frames: int, fps: int) -> FaceParams:
    """A one-frame reconstruction as a `frames`-frame video at `fps` of that still frame."""
    arrays = {name: np.repeat(getattr(params, name)[:1], frames, axis=0) for name in FaceParams.ARRAYS[1:]}
    video = replace(params.video, fps_num=fps, fps_den=1, frame_count=frames, listed_frames=None, fingerprint=None)
    return replace(params, video=video, **arrays)


@dataclass(frozen=True)
class Plan:
    """One clip to render: identity index, label (folder), rendered emotion, intensity, kind, neutral end frames."""

    identity: int
    clip_id: str
    label: str
    rendered: str
    intensity: float
    kind: str
    neutral: int


def plan_clips(config: SynthConfig, identities: int, rng: np.random.Generator) -> list[Plan]:
    """Every identity x emotion x clip, with outlier kinds drawn for the emotional clips by the config's fractions."""
    motion = config.motion
    plans = []
    for identity in range(identities):
        for emotion in config.emotions:
            for k in range(config.clips_per_emotion):
                kind = "clean"
                if emotion != "neutral":
                    kinds, fractions = ["clean", *config.outliers], list(config.outliers.values())
                    kind = rng.choice(kinds, p=[1 - sum(fractions), *fractions])
                rendered, intensity, neutral = emotion, 1.0, 0
                if kind == "ambiguous":
                    intensity = float(rng.uniform(*motion.ambiguous_intensity))
                elif kind == "wrong_label":
                    rendered = str(rng.choice([e for e in config.emotions if e not in (emotion, "neutral")]))
                elif kind == "onset_offset":
                    neutral = int(round(motion.outlier_onset * motion.frames))
                plans.append(Plan(identity, f"{k + 1:03d}", emotion, rendered, intensity, str(kind), neutral))
    return plans


def render_clip(still: np.ndarray, params: FaceParams, plan: Plan, config: SynthConfig, manipulator, edit,
                speech_tracks: tuple[np.ndarray, np.ndarray], path: Path) -> ClipTruth:
    """Render one clip with the (frames,) jaw and press tracks of `speech` to `path` (atomically) and return its
    truth row (path and actor filled in by the caller)."""
    motion = config.motion
    weight = envelope(motion.frames, motion.onset, plan.neutral)
    animated = repeat_frame(params, motion.frames, motion.fps)
    target = animate(animated, manipulator, plan.rendered, plan.intensity, weight, *speech_tracks)
    editor = FrameEditor(animated, target, edit)
    height, width = still.shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, Fraction(motion.fps), width, height) as writer:
        for index in range(motion.frames):
            writer.write(editor.render(index, still))
    expressive = np.flatnonzero(weight >= 0.5)
    return ClipTruth("", "", plan.label, plan.rendered, plan.intensity, plan.kind, motion.frames,
                     int(expressive[0]), int(expressive[-1]) + 1)


def twin_path(root: Path, clip: str, emotion: str) -> Path:
    """Where the twin of the clip at `clip` (relative to root) in `emotion` is: the same identity and speech, that
    emotion shown at full intensity (root/twins/<clip without .mp4>/<emotion>.mp4)."""
    return Path(root) / TWINS / Path(clip).with_suffix("") / f"{emotion}.mp4"


@dataclass(frozen=True)
class SynthSet:
    """What build_synthmead wrote (`truths`, one per clip) and the source faces it left out (`skipped`:
    (identity, reason))."""

    truths: list[ClipTruth]
    skipped: list[tuple[str, str]]


def build_synthmead(config: SynthConfig, out: Path, progress: bool = True) -> SynthSet:
    """Write the set into `out` (MEAD layout + truth.csv, written last); the same config gives the same files.
    Source faces that are not detected or cannot be reconstructed are left out, counted in the result and logged."""
    edit = load_edit_config(repo_path(config.edit_config))
    edit = replace(edit, mouth=replace(edit.mouth, enabled=False), temporal_sigma=0.0)
    reconstruction = load_config(repo_path(config.reconstruct_config), ReconstructionConfig)
    rng = np.random.default_rng(config.seed)
    truths = []
    with tempfile.TemporaryDirectory(prefix="synthmead-") as workdir:
        faces, skipped = identity_faces(config, reconstruction, Path(workdir))
        fitted = []
        for face in tqdm(faces, desc="fit faces", unit="face", disable=not progress):
            try:
                fitted.append((face, fit_face(face, reconstruction)))
            except UserError as error:  # the reconstructor cannot fit this face: it is not an identity of the set
                skipped.append((face.identity, str(error)))
        for identity, reason in skipped:
            LOG.warning("source face %s left out: %s", identity, reason)
        if not fitted:
            raise UserError(f"no source face could be reconstructed ({len(skipped)} left out)")
        manipulator = FacsManipulator(edit.facs, fitted[0][1].schema)
        for plan in tqdm(plan_clips(config, len(fitted), rng), desc="render clips", unit="clip",
                         disable=not progress):
            face, params = fitted[plan.identity]
            actor = f"S{plan.identity + 1:03d}"
            level = 1 if plan.label == "neutral" else LEVEL
            relative = Path(actor, "video", "front", plan.label, f"level_{level}", f"{plan.clip_id}.mp4")
            still = next(iter(VideoReader(face.media)))
            speech_tracks = speech(config.motion.frames, config.motion.fps, config.motion, rng)
            truth = render_clip(still, params, plan, config, manipulator, edit, speech_tracks, out / relative)
            truths.append(replace(truth, path=relative.as_posix(), actor=actor))
            if plan.kind == "clean" and actor in config.twins:
                for emotion in config.emotions:
                    if emotion != plan.label:
                        render_clip(still, params, replace(plan, rendered=emotion), config, manipulator, edit,
                                    speech_tracks, twin_path(out, relative.as_posix(), emotion))
    write_truth(out / "truth.csv", truths)
    return SynthSet(truths, skipped)


def identity_faces(config: SynthConfig, reconstruction: ReconstructionConfig, workdir: Path
                   ) -> tuple[list[Face], list[tuple[str, str]]]:
    """Each source face cut out as a (size, size) PNG (photos as face_sources cuts them, a video source's
    `frame`-th frame as a photo), and the (identity, reason) of the photos in which no face was detected."""
    from ned_outlier.face.detector import FaceDetector
    from ned_outlier.io.image import write_image

    detector = FaceDetector(reconstruction.detector)
    faces, skipped = [], []
    for name, spec in config.sources.items():
        spec = dict(spec)
        frame = spec.pop("frame", None)
        source = from_dict(SourceConfig, spec, f"sources.{name}")
        if frame is not None:
            media = media_path(source.media)
            image = next((f for i, f in enumerate(VideoReader(media)) if i == frame), None)
            if image is None:
                raise UserError(f"sources.{name}: {media} has no frame {frame}")
            still = workdir / f"{name}_still.png"
            write_image(still, image)
            source = replace(source, media=str(still))
        faces += photo_faces(name, source, config, detector, workdir, skipped)
    return faces, skipped


def write_truth(path: Path, truths: list[ClipTruth]) -> Path:
    names = [f.name for f in fields(ClipTruth)]
    with atomic_output(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows([[getattr(t, n) for n in names] for t in truths])
    return path


def require_set(root: Path) -> None:
    """UserError unless `root` holds a SynthMEAD set and nothing else (what make_synthmead.py --overwrite checks
    before deleting it): a truth.csv with its columns, beside it only actor folders (S001, ...) that hold only
    video/, the twins/ folder and partial files of truth.csv."""
    root = Path(root)
    keep = "not deleted: choose another --out, or empty it yourself"
    try:
        with open(root / "truth.csv", newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        raise UserError(f"{root} holds no readable truth.csv, so it is not a SynthMEAD set; {keep}") from None
    if header != [f.name for f in fields(ClipTruth)]:
        raise UserError(f"{root / 'truth.csv'} is not a SynthMEAD truth table (columns {header[:4]}...); {keep}")

    def of_the_set(entry: Path) -> bool:
        if entry.name == "truth.csv" or entry.name.startswith(".truth.csv.partial-"):
            return True
        if not entry.is_dir() or entry.is_symlink():
            return False
        return entry.name == TWINS or (re.fullmatch(r"S\d{3,}", entry.name) is not None
                                       and {child.name for child in entry.iterdir()} <= {"video"})

    others = sorted(entry.name for entry in root.iterdir() if not of_the_set(entry))
    if others:
        raise UserError(f"{root} holds {', '.join(others[:3])}{' ...' if len(others) > 3 else ''} beside a SynthMEAD "
                        f"set; {keep}")


def read_truth(root: Path) -> list[ClipTruth]:
    path = Path(root) / "truth.csv"
    if not path.is_file():
        raise UserError(f"no truth.csv in {root}: not a finished SynthMEAD set (scripts/make_synthmead.py)")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [ClipTruth(r["path"], r["actor"], r["label"], r["rendered"], float(r["intensity"]), r["kind"],
                      int(r["frames"]), int(r["onset_end"]), int(r["offset_start"])) for r in rows]
