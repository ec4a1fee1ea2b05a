#!/usr/bin/env python
"""Quality of edits of the packaged clips, measured with models this project does not tune the editor for.

Clips (--clips, default both): pexels, the 20 s Pexels clip (472 frames); webcam, the 3 s webcam clip (72 frames).
Each clip is reconstructed once (kept as <out>/<clip>/params.npz) and edited to every target (--emotions, default
all 7) with every renderer and mouth mode asked for (default: the default edit, warp + mouth retrieval with
--mouth keep). Every edited video is judged against its source:

  target rate   per judge (fer's FER2013 mini-Xception, plus each --judge NAME=PATH), the fraction of frames whose
                top class is the target, for the edit and (in brackets) for the source: over all face frames / over
                the source's neutral frames (those whose top class under that judge on the SOURCE clip is neutral;
                their number is in the header) / over the frames without a hand over the mouth
                (FaceParams.mouth_occluded);
  identity      mean dlib 128-D embedding distance between source and edited frames (every 4th; same person < 0.6);
  mouth r       (--mouth keep) Pearson r between the source's and the edit's inner-lip opening;
  sharpness     mean |Laplacian| of the grey face region (hull of the source frame's mesh, eroded) of the edited
                frame over the same of the source frame, averaged over face frames; in brackets the same for a
                plain re-encode of the source (VideoWriter, the editor's encoder settings): what the codec costs;
  pops          frames whose jump (mean |change of grey(edit) - grey(source)| from the frame before, over the
                face region) exceeds 4 grey levels, with the worst frames; and the same after moving the previous
                residual along the source's own optical flow (head, jaw, lips, brows; occluded pixels left out),
                since a residual in image space also jumps when the face moves;
  donor mouths, fold-limited  the fractions of edited frames whose mouth came from another frame / whose change
                was scaled down to avoid folding the mesh.
The measures are those of recognition/evaluate.py (scripts/evaluate.py --target EMOTION --source VIDEO) and
recognition/edit_measures.py. Writes under --out, per clip: <clip>/quality.md (the table, also printed),
<clip>/quality.json (raw numbers, per-frame sharpness and jumps too), <clip>/source.md (what each judge says of
the source: the ceiling for a renderer that draws on the actor's own appearance; --source-only: just that); and a
contact sheet per clip (the source and every target on three frames, cut from the measured videos) into
--sheets-dir as contact_sheet_<clip>.jpg.

Resumable: an edit whose video exists and whose settings (clip, target, renderer, mouth, edit config, face
parameters, editor source) match its <name>.json is not redone, nor its measures when the judges and the measuring
code match too; --force redoes everything.

    python benchmarks/edit_quality.py                                      # both clips, 7 targets (~10 min)
    python benchmarks/edit_quality.py --clips webcam --emotions happy,sad --out /tmp/q_webcam
    python benchmarks/edit_quality.py --judge cnn-efficientnet-b0=out/accuracy/cnn-efficientnet-b0/model.safetensors
    python benchmarks/edit_quality.py --clips pexels --renderers warp,mouth --mouth keep,edit   # every variant
    python benchmarks/edit_quality.py --clips pexels --set mouth.crossfade=0 --out out/quality_hard_cut \\
        --sheets-dir out/quality_hard_cut                        # a setting of configs/edit/default.yaml changed
    python benchmarks/edit_quality.py --clips pexels --renderers mouth,neural --from-frame 378 \\
        --checkpoint out/renderer_pexels/renderer.safetensors --out out/quality_neural
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.cli import run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402

EMOTIONS = ("happy", "sad", "surprised", "angry", "fear", "disgusted", "neutral")
RENDERERS = {"warp": "warp", "mouth": "warp + mouth retrieval", "neural": "neural"}
FER = ("fer", "fer2013-minixception")  # display name, registry name


@dataclasses.dataclass(frozen=True)
class Clip:
    """A packaged clip: its asset, the frames of its contact sheet, and the frames its target-rate goal is on."""

    asset: str
    sheet_frames: tuple[int, ...]
    goal_subset: str  # "source_neutral" or "no_hand"


CLIPS = {
    "pexels": Clip("pexels_video", (120, 250, 420), "no_hand"),  # she covers her mouth in 172 of 472 frames
    "webcam": Clip("single_face_video", (5, 40, 71), "source_neutral"),  # neutral, grin, later
}
SUBSETS = {"all": "all face frames", "source_neutral": "source-neutral frames", "no_hand": "frames without a hand"}
GOALS = {"target_rate": 0.6, "identity": 0.4, "mouth_r": 0.9, "pops": 0, "sharpness": 0.92}
GOALS_LINE = ("Goals: every target the top class on >= 0.6 of the webcam clip's source-neutral frames and of the "
              "Pexels clip's frames without a hand (under every judge); identity < 0.4; mouth r >= 0.9; 0 pops; "
              "sharpness >= 0.92.")
SHEET_TILE = 200
SHEET_MAX_BYTES = 300_000
EDITOR_SOURCES = ("ned_outlier/**/*.py", "configs/edit/**/*.yaml", "configs/reconstruct/**/*.yaml")
MEASURE_SOURCES = ("recognition/**/*.py", "benchmarks/edit_quality.py")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"comma-separated: {', '.join(CLIPS)} (default both)")
    parser.add_argument("--video", type=Path, help="another clip instead of --clips (named by its file stem)")
    parser.add_argument("--emotions", default=",".join(EMOTIONS), help="comma-separated targets (default: all 7)")
    parser.add_argument("--renderers", default="mouth", help="comma-separated: warp, mouth (warp + mouth retrieval, "
                                                             "the default), neural")
    parser.add_argument("--mouth", default="keep", help="comma-separated mouth modes: keep (default), edit")
    parser.add_argument("--judge", action="append", default=[], metavar="NAME=PATH",
                        help="another judge besides fer: a registered classifier and its weights (as scripts/"
                             "evaluate.py --model NAME --pretrained PATH); may be repeated")
    parser.add_argument("--checkpoint", type=Path, help="renderer.safetensors for the neural renderer")
    parser.add_argument("--from-frame", type=int, default=0, help="edit and judge frames from this one on")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of configs/edit/default.yaml, e.g. --set mouth.crossfade=0")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "quality", help="folder for videos and results")
    parser.add_argument("--sheets-dir", type=Path, default=REPO / "docs", help="where the contact sheets go")
    parser.add_argument("--force", action="store_true", help="redo every reconstruction, edit and measure")
    parser.add_argument("--source-only", action="store_true", help="only what the judges say of the source clips")
    args = parser.parse_args(argv)
    args.clips = [args.video.stem] if args.video else args.clips.split(",")
    args.emotions, args.renderers, args.mouth = (s.split(",") for s in (args.emotions, args.renderers, args.mouth))
    if args.video is None and set(args.clips) - set(CLIPS):
        parser.error(f"clips are {', '.join(CLIPS)}")
    if set(args.renderers) - set(RENDERERS) or ("neural" in args.renderers) != (args.checkpoint is not None):
        parser.error(f"renderers are {', '.join(RENDERERS)}; neural needs --checkpoint (and only it)")
    if set(args.mouth) - {"keep", "edit"}:
        parser.error("mouth modes are keep, edit")
    from ned_outlier.labels import normalise_emotion

    try:
        args.emotions = [normalise_emotion(e) for e in args.emotions]
    except UserError as error:
        parser.error(str(error))
    judges = {}
    for spec in args.judge:
        name, _, path = spec.partition("=")
        if not name or name == FER[0] or name in judges:
            parser.error(f"--judge {spec}: give NAME=PATH, each NAME once and not {FER[0]!r}")
        if path and not Path(path).is_file():
            parser.error(f"--judge {spec}: no such file {path}")
        judges[name] = Path(path) if path else None
    args.judge = judges
    return args


# ---- fingerprints: what decides whether a stored result can be reused ----

def source_digest(patterns) -> str:
    """sha256 over the paths and contents of the repository files matching `patterns`."""
    digest = hashlib.sha256()
    for path in sorted({p for pattern in patterns for p in REPO.glob(pattern) if p.is_file()}):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def file_stamp(path: Path | None) -> str | None:
    """Path, size and modification time of a file (None for None): enough to tell a changed weights file."""
    if path is None:
        return None
    stat = Path(path).stat()
    return f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def params_digest(params) -> str:
    digest = hashlib.sha256()
    for name in params.ARRAYS:
        digest.update(getattr(params, name).tobytes())
    return digest.hexdigest()[:16]


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_json(path: Path, value) -> None:
    from ned_outlier.io.atomic import atomic_output

    with atomic_output(path) as temp:
        temp.write_text(json.dumps(value, indent=1) + "\n")


def write_text(path: Path, text: str) -> None:
    from ned_outlier.io.atomic import atomic_output

    with atomic_output(path) as temp:
        temp.write_text(text)


# ---- the clip, its reconstruction and its plain re-encode ----

def tail_clip(video: Path, start: int, out: Path) -> Path:
    """Frames start.. of `video` as their own video (no audio: the measures do not use it)."""
    from ned_outlier.io.video import VideoReader, VideoWriter

    reader = VideoReader(video)
    info = reader.info
    with VideoWriter(out, info.fps, info.width, info.height) as writer:
        for index, frame in enumerate(reader):
            if index >= start:
                writer.write(frame)
    return out


def reencode(video: Path, out: Path, encoder) -> Path:
    """`video` decoded and encoded again as the editor writes its output (the edit config's `encoder` settings)."""
    from ned_outlier.io.video import VideoReader, VideoWriter

    reader = VideoReader(video)
    info = reader.info
    with VideoWriter(out, info.fps, info.width, info.height, audio_from=video, encoder=encoder) as writer:
        for frame in reader:
            writer.write(frame)
    return out


def clip_params(video: Path, folder: Path, editor: str, force: bool):
    """The clip's FaceParams: <folder>/params.npz when it was made from this video by this editor source, else
    reconstructed now and saved there."""
    from ned_outlier.reconstruction.params import FaceParams
    from ned_outlier.reconstruction.reconstructor import reconstruct

    path, stamp = folder / "params.npz", {"video": file_stamp(video), "editor": editor}
    if not force and path.is_file() and read_json(folder / "params.json") == stamp:
        print(f"reusing {path}", flush=True)
        return FaceParams.load(path)
    params = reconstruct(video, progress=False)
    params.save(path)
    write_json(folder / "params.json", stamp)
    return params


def face_regions(params):
    """Per frame the source mesh's 468 face points (x, y), None where there is no face."""
    return (params.landmarks[t, :468, :2] if params.face_found[t] else None for t in range(params.num_frames))


# ---- judging ----

def subset_frames(params, source_records: dict[str, list], judges: dict) -> dict[str, dict[str, set | None]]:
    """Per judge, the frames of each subset (None: every frame)."""
    from recognition.edit_measures import top_class_frames

    no_hand = {t for t in range(params.num_frames) if not params.mouth_occluded[t]}
    return {name: {"all": None, "no_hand": no_hand,
                   "source_neutral": top_class_frames(source_records[name], judges[name].labels, "neutral")}
            for name in judges}


def judge_rates(records: dict[str, list], source_records: dict[str, list], judges: dict, subsets: dict,
                emotion: str) -> dict:
    """Per judge and subset: the target rate of the edit, of the source, and the edit's face frames counted."""
    from recognition.edit_measures import target_rate

    result = {}
    for name, judge in judges.items():
        result[name] = {"edited": {}, "source": {}, "frames": {}}
        for subset, frames in subsets[name].items():
            rate, count = target_rate(records[name], judge.labels, emotion, frames)
            result[name]["edited"][subset], result[name]["frames"][subset] = rate, count
            result[name]["source"][subset] = target_rate(source_records[name], judge.labels, emotion, frames)[0]
    return result


def misses(row: dict, goal_subset: str) -> list[str]:
    """The goals (GOALS) this row misses, in words."""
    missed = []
    for name, rates in row["judges"].items():
        rate = rates["edited"][goal_subset]
        if rate is None:
            missed.append(f"{name}: no {SUBSETS[goal_subset]}")
        elif rate < GOALS["target_rate"]:
            missed.append(f"{name} {rate:.2f}")
    if row["identity_distance"] is None or row["identity_distance"] >= GOALS["identity"]:
        missed.append("identity")
    if row["mouth"] == "keep" and (row["mouth_r"] is None or row["mouth_r"] < GOALS["mouth_r"]):
        missed.append("mouth r")
    if row["pops"] is None or row["pops"] > GOALS["pops"]:
        missed.append("pops")
    if row["sharpness_ratio"] is None or row["sharpness_ratio"] < GOALS["sharpness"]:
        missed.append("sharpness")
    return missed


def source_table(summary: dict) -> str:
    """Markdown: per class, the fraction of the source's face frames whose top class it is and its highest
    probability on any of them."""
    lines = ["| class | top class on source frames | highest probability on a source frame |", "|---|---|---|"]
    for label, count in summary["top_class_counts"].items():
        lines.append(f"| {label} | {count / summary['with_face']:.2f} | {summary['max_probabilities'][label]:.2f} |")
    return "\n".join(lines)


# ---- output ----

def _n(value, digits=2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def pops_cell(measures: dict, suffix: str = "") -> str:
    """"N: #a, #b (max J)": the pops, the worst of them, the largest jump."""
    pops, largest = measures["pops" + suffix], _n(measures["max_jump" + suffix], 1)
    if not pops:
        return f"{'-' if pops is None else 0} (max {largest})"
    worst = [f"#{f}" for f, jump in measures["worst_frames" + suffix] if jump > measures["pop_threshold"]]
    return f"{pops}: {', '.join(worst)}{', ...' if pops > len(worst) else ''} (max {largest})"


def clip_table(clip: str, header: dict, rows: list[dict]) -> str:
    """The Markdown section of one clip: a title, the goals, the source's numbers, the table."""
    judges = list(header["source_neutral_frames"])
    neutral = ", ".join(f"{name} {count}" for name, count in header["source_neutral_frames"].items())
    codec = header["reencode"]
    lines = [f"### {clip}: {header['video_name']}, {header['frames']} frames ({header['face_frames']} with a face, "
             f"{header['hand_frames']} with a hand over the mouth)", "",
             GOALS_LINE + f" This clip's target-rate goal is on its {SUBSETS[header['goal_subset']]}.", "",
             f"Source-neutral frames (top class neutral on the source clip): {neutral}. Plain re-encode of the source "
             f"(VideoWriter, the editor's settings): sharpness {_n(codec['sharpness_ratio'], 3)}, "
             f"pops {pops_cell(codec)}, face motion compensated {pops_cell(codec, '_compensated')}. A pop is a "
             f"frame whose jump (mean |change of grey(edit) - grey(source)| over the face) exceeds "
             f"{codec['pop_threshold']:g} grey levels; the residual is in image space, so the face's own motion "
             "makes jumps too: the compensated column first moves the previous residual along the source's own "
             "optical flow (the head, the jaw, the lips; pixels the flow finds occluded left out), as in Lai et al.'s "
             "warping error. The goal is on the plain count.", ""]
    columns = ["target", "renderer, mouth",
               *(f"{name} target rate: all / source-neutral / no hand (source)" for name in judges),
               "identity", "mouth r", "sharpness (re-encode)", "pops (worst)", "pops, face motion compensated",
               "donor mouths", "fold-limited",
               "goals missed"]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        rates = []
        for name in judges:
            edited, source = r["judges"][name]["edited"], r["judges"][name]["source"]
            rates.append(" / ".join(_n(edited[s]) for s in SUBSETS) + " ("
                         + " / ".join(_n(source[s]) for s in SUBSETS) + ")")
        mouth_r = _n(r["mouth_r"], 3) if r["mouth"] == "keep" else "-"
        lines.append(f"| {r['emotion']} | {RENDERERS[r['renderer']]}, {r['mouth']} | {' | '.join(rates)} | "
                     f"{_n(r['identity_distance'], 3)} | {mouth_r} | {_n(r['sharpness_ratio'], 3)} "
                     f"({_n(codec['sharpness_ratio'], 3)}) | {pops_cell(r)} | {pops_cell(r, '_compensated')} | "
                     f"{r['mouth_from_donor']:.2f} | "
                     f"{r['fold_limited']:.2f} | {'; '.join(r['misses']) or 'none'} |")
    return "\n".join(lines)


def sheet_frames(clip: Clip | None, params, from_frame: int) -> list[int]:
    """The clip's sheet frames (shifted by --from-frame) that exist and show the face; else three spread over the
    face frames."""
    frames = [f - from_frame for f in (clip.sheet_frames if clip else ())]
    frames = [f for f in frames if 0 <= f < params.num_frames and params.face_found[f]]
    if not frames:
        faces = [t for t in range(params.num_frames) if params.face_found[t]]
        frames = sorted({faces[round(q * (len(faces) - 1))] for q in (0.2, 0.5, 0.8)})
    return frames


def write_sheet(path: Path, source: Path, edits: dict[str, Path], params, frames: list[int]) -> Path:
    """The contact sheet: source and each edit (name -> video) on `frames`, cut from the videos themselves, face
    crops labelled (scripts/stills.py's drawing), as a JPEG of at most SHEET_MAX_BYTES."""
    import cv2

    from ned_outlier.io.atomic import atomic_output
    from ned_outlier.io.video import VideoReader
    from scripts.stills import contact_sheet, face_box

    wanted, last = set(frames), max(frames)
    columns = {}
    for name, video in {"source": source, **edits}.items():
        columns[name] = {}
        for index, frame in enumerate(VideoReader(video)):
            if index in wanted:
                columns[name][index] = frame
            if index >= last:
                break
    boxes = {f: face_box(params.landmarks[f, :468, :2], columns["source"][f].shape) for f in frames}
    bgr = cv2.cvtColor(contact_sheet(columns, boxes, SHEET_TILE), cv2.COLOR_RGB2BGR)
    for quality in (88, 80, 70, 60, 50):
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(data) <= SHEET_MAX_BYTES:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temp:
        temp.write_bytes(data.tobytes())
    return path


# ---- the run ----

def edit_or_reuse(video, out, settings, edit_config, params, emotion, renderer, mouth, neural, force) -> dict:
    """The edit's report (frames, edited, fold_limited, mouth_from_donor): from <out>.json when `out` exists and was
    made with these `settings`, else made now."""
    from ned_outlier.pipeline import edit_video

    sidecar = out.with_suffix(".json")
    stored = read_json(sidecar)
    if not force and out.is_file() and stored.get("edit") == settings:
        print(f"reusing {out.name}", flush=True)
        return stored
    started = time.perf_counter()
    report = edit_video(video, out, edit_config, emotion=emotion, mouth=mouth, params=params, progress=False,
                        neural_renderer=neural if renderer == "neural" else None)
    stored = {"edit": settings, "seconds": round(time.perf_counter() - started, 1),
              "report": {"frames": report.frames, "edited": report.edited, "fold_limited": report.fold_limited,
                         "mouth_from_donor": report.mouth_from_donor}}
    write_json(sidecar, stored)
    print(f"edited {out.name} in {stored['seconds']} s", flush=True)
    return stored


def run_clip(name: str, args, tools: dict, digests: dict) -> None:
    from ned_outlier.assets import asset_path
    from ned_outlier.pipeline import load_edit_config
    from recognition.edit_measures import measure_videos
    from recognition.evaluate import compare_to_source, evaluate_video, summarise

    config = load_edit_config(overrides=args.overrides)  # first: a bad --set is refused before any work
    clip = None if args.video else CLIPS[name]
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    video = args.video or asset_path(clip.asset)
    if args.from_frame:
        video = tail_clip(video, args.from_frame, folder / f"source_from_{args.from_frame}.mp4")
    params = clip_params(video, folder, digests["editor"], args.force)
    digests["params"][name] = params_digest(params)
    panel, judges = tools["panel"], tools["panel"].judges
    measure = dict(classifier=panel, faces=tools["faces"], embedder=tools["embedder"])
    source = evaluate_video(video, **measure)
    source_records = panel.split(source.records)
    ceiling = "\n\n".join(f"{judge}:\n\n" + source_table(summarise(source_records[judge], judges[judge].labels))
                          for judge in judges)
    print(f"what the judges say of the {name} clip:\n{ceiling}", flush=True)
    write_text(folder / "source.md", ceiling + "\n")
    if args.source_only:
        return

    subsets = subset_frames(params, source_records, judges)
    codec = measure_videos(video, reencode(video, folder / "source_reencode.mp4", config.encoder), face_regions(params))
    header = {"clip": name, "video": str(video), "video_name": Path(video).name, "frames": params.num_frames,
              "face_frames": int(params.face_found.sum()),
              "hand_frames": int((params.mouth_occluded & params.face_found).sum()),
              "goal_subset": clip.goal_subset if clip else "no_hand",
              "source_neutral_frames": {judge: len(subsets[judge]["source_neutral"]) for judge in judges},
              "reencode": codec, "judges": tools["judge_stamps"],
              "editor_source": digests["editor"]}
    neural = None
    if "neural" in args.renderers:
        from ned_outlier.renderer.neural.checkpoint import load_renderer

        neural = load_renderer(args.checkpoint, params.schema)
    rows, sheet_edits = [], {}
    sheet_variant = ("mouth", "keep") if ("mouth" in args.renderers and "keep" in args.mouth) else (
        args.renderers[0], args.mouth[0])
    for emotion in args.emotions:
        for renderer in args.renderers:
            for mouth in args.mouth:
                edit_config = dataclasses.replace(config, mouth=dataclasses.replace(
                    config.mouth, enabled=renderer == "mouth"))
                out = folder / f"{emotion}_{renderer}_{mouth}.mp4"
                settings = {"video": file_stamp(video), "from_frame": args.from_frame, "emotion": emotion,
                            "renderer": renderer, "mouth": mouth, "checkpoint": file_stamp(args.checkpoint),
                            "config": hashlib.sha256(json.dumps(dataclasses.asdict(edit_config), sort_keys=True,
                                                                default=str).encode()).hexdigest()[:16],
                            "params": digests["params"][name], "editor": digests["editor"]}
                stored = edit_or_reuse(video, out, settings, edit_config, params, emotion, renderer, mouth, neural,
                                       args.force)
                if (renderer, mouth) == sheet_variant:
                    sheet_edits[emotion] = out
                measure_key = {"judges": header["judges"], "code": digests["measure"]}
                if not args.force and stored.get("measure") == measure_key and "row" in stored:
                    rows.append(stored["row"])
                    continue
                edited = evaluate_video(out, **measure)
                comparison = compare_to_source(edited, source)
                report = stored["report"]
                row = {"clip": name, "emotion": emotion, "renderer": renderer, "mouth": mouth,
                       "judges": judge_rates(panel.split(edited.records), source_records, judges, subsets, emotion),
                       "identity_distance": comparison["identity_distance"],
                       "identity_frames": comparison["identity_frames"],
                       "mouth_r": comparison["mouth_r"], "mouth_frames": comparison["mouth_frames"],
                       **measure_videos(video, out, face_regions(params)),
                       "mouth_from_donor": report["mouth_from_donor"] / max(report["edited"], 1),
                       "fold_limited": report["fold_limited"] / max(report["edited"], 1),
                       "edit_seconds": stored.get("seconds")}
                row["misses"] = misses(row, header["goal_subset"])
                rows.append(row)
                write_json(out.with_suffix(".json"), {**stored, "measure": measure_key, "row": row})
                print(json.dumps({k: v for k, v in row.items() if k != "frames"}), flush=True)

    table = clip_table(name, header, rows)
    print(table, flush=True)
    write_text(folder / "quality.md", table + "\n")
    write_json(folder / "quality.json", {"header": header, "goals": GOALS, "rows": rows})
    if sheet_edits:
        frames = sheet_frames(clip, params, args.from_frame)
        sheet = write_sheet(args.sheets_dir / f"contact_sheet_{name}.jpg", video, sheet_edits, params, frames)
        print(f"wrote {sheet} ({sheet.stat().st_size // 1000} KB; frames {', '.join(map(str, frames))}; "
              f"{RENDERERS[sheet_variant[0]]}, mouth {sheet_variant[1]})", flush=True)


def main(argv=None) -> None:
    args = parse_args(argv)
    from ned_outlier.face.finder import FaceFinder
    from recognition import create_model
    from recognition.edit_measures import JudgePanel
    from recognition.identity import FaceEmbedder

    judges = {FER[0]: (FER[1], None)} | {name: (name, path) for name, path in args.judge.items()}
    models = {name: create_model(model, pretrained=path) for name, (model, path) in judges.items()}
    tools = {"panel": JudgePanel(models), "faces": FaceFinder(), "embedder": FaceEmbedder(),
             "judge_stamps": {name: f"{model} {file_stamp(path) or 'packaged weights'}"
                              for name, (model, path) in judges.items()}}
    digests = {"editor": source_digest(EDITOR_SOURCES), "measure": source_digest(MEASURE_SOURCES), "params": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.clips:
        run_clip(name, args, tools, digests)


if __name__ == "__main__":
    sys.exit(run_cli(main))
