#!/usr/bin/env python
"""Change the facial expression in a video or a photo to a target emotion, or to the expression style of a reference
clip.

The speech (mouth opening), identity, head pose, background, frame rate, size and audio are kept. Works offline on
CPU: 3D face reconstruction per frame (MediaPipe mesh + a linear FACS model), EMFACS emotion prototypes, and a
mesh-guided warp of the source pixels. Trained parts replace the defaults: a NED manipulator (train_ned.py) and a
neural renderer trained on this actor (train_renderer.py).

    python scripts/edit.py --emotion happy video.mp4              # -> video_happy.mp4 beside the input
    python scripts/edit.py --emotion sad photo.jpg --preview      # -> photo_sad.jpg + photo_sad_preview.jpg
    python scripts/edit.py --emotion happy clips/ "more/*.mp4" --out-dir edited/ --jobs 2   # a batch
    accelerate launch --num_processes 4 scripts/edit.py --emotion happy clips/ --out-dir edited/   # split 4 ways
    python scripts/edit.py --reference other.mp4 video.mp4 --out styled.mp4 --preview
    python scripts/edit.py --emotion sad video.mp4 --renderer neural --checkpoint runs/renderer/renderer.safetensors

Batch (several inputs, a folder or a glob): each input is edited in its own process (--jobs at a time), outputs that
already exist are skipped (so a killed batch resumes where it stopped; --overwrite edits them again), and a summary
says what was edited, skipped and failed (with the reason); the exit code is 2 when any input failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import (add_reconstruction_arguments, reconstruction_options, reconstruction_overrides,  # noqa: E402
                             run_cli)
from ned_outlier.errors import UserError  # noqa: E402
from ned_outlier.labels import EMOTIONS, normalise_emotion  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "edit" / "default.yaml"
DEFAULT_RECONSTRUCT_CONFIG = REPO / "configs" / "reconstruct" / "default.yaml"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path, nargs="+",
                        help="input video or photo (jpg, png, webp, bmp; EXIF orientation honoured), never modified; "
                             "several, a folder or a glob make a batch")
    target = parser.add_argument_group("target (exactly one)")
    target.add_argument("--emotion", help=f"target emotion: {', '.join(EMOTIONS)} (synonyms such as joy, anger work)")
    target.add_argument("--reference", type=Path, help="a clip whose expression style to transfer")
    parser.add_argument("--intensity", type=float, default=1.0,
                        help="how far toward the target, 0 (unchanged) to 1 (full prototype); default 1")
    parser.add_argument("--mouth", choices=("keep", "edit"), default="keep",
                        help="keep: the jaw and lips follow the source (talking video, default); "
                             "edit: the mouth too moves to the target expression (silent clips)")
    parser.add_argument("--manipulator", choices=("facs", "ned"), default="facs",
                        help="facs: training-free FACS prototypes (default); ned: a trained NED checkpoint")
    parser.add_argument("--renderer", choices=("warp", "neural"), default="warp",
                        help="warp: move the source pixels along the mesh, mouth by retrieval (default); "
                             "neural: a renderer trained on this actor by train_renderer.py")
    parser.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="model.safetensors of train_ned.py (--manipulator ned) and/or renderer.safetensors of "
                             "train_renderer.py (--renderer neural); repeat for both: each file says what it is")
    parser.add_argument("--out", type=Path,
                        help="output video (default: beside the input, named <input>_<emotion>.mp4; for a "
                             "photo <input>_<emotion> with the photo's suffix); written atomically, never the input "
                             "itself, never an existing file unless --overwrite")
    parser.add_argument("--out-dir", type=Path,
                        help="batch: where the outputs go, named as beside the input (default: beside each input)")
    parser.add_argument("--jobs", type=int, default=1, help="batch: inputs edited at once, each in its own process "
                                                            "(default 1; the cores are shared between them)")
    parser.add_argument("--preview", action="store_true",
                        help="also write <out>_preview.mp4 (a photo: <out>_preview.jpg ...): original | edited")
    parser.add_argument("--face", default="largest",
                        help="which face when several are tracked: 'largest' (default), a track id, or 'all' (each "
                             "face edited with its own reconstruction)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed: the latent z of --manipulator ned (facs is deterministic)")
    parser.add_argument("--params", type=Path, help="reuse a reconstruction saved by --save-params or reconstruct.py")
    parser.add_argument("--save-params", type=Path, help="save the reconstruction (params.npz) for later edits")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output (the video, its preview, --save-params); without it an "
                             "existing one is an error")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="edit YAML (default: %(default)s)")
    parser.add_argument("--reconstruct-config", type=Path, default=DEFAULT_RECONSTRUCT_CONFIG,
                        help="reconstruction YAML (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_reconstruction_arguments(parser)
    return parser.parse_args(argv)


def output_path(args, label: str) -> Path:
    """--out, or <input stem>_<label>.mp4 beside the input (a photo keeps its suffix: photo_happy.jpg); UserError
    for a photo output of a video (a video's edit has all its frames)."""
    from ned_outlier.io.image import is_image

    photo = is_image(args.video)
    if args.out is not None:
        if is_image(args.out) and not photo and args.video.is_file():
            raise UserError(f"--out {args.out} is a photo, but {args.video} is a video: give a video name (.mp4)")
        return args.out
    return args.video.with_name(f"{args.video.stem}_{label}{args.video.suffix if photo else '.mp4'}")


def check_writable(path: Path) -> None:
    """UserError unless `path` can be written: not a folder, in a folder that exists and is writable."""
    import os

    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write {path}: folder {folder} is not writable")


def sort_checkpoints(args) -> dict[str, Path]:
    """--checkpoint files by role, "manipulator" and/or "renderer", from their own metadata; UserError when one is
    missing for the chosen --manipulator / --renderer or is given without them."""
    found: dict[str, Path] = {}
    if args.checkpoint:  # reading a checkpoint's format loads torch: only when one is given
        from ned_outlier.manipulator.ned.checkpoint import FORMAT as MANIPULATOR_FORMAT
        from ned_outlier.renderer.neural.checkpoint import FORMAT as RENDERER_FORMAT, checkpoint_format

        roles = {MANIPULATOR_FORMAT: "manipulator", RENDERER_FORMAT: "renderer"}
    for path in args.checkpoint:
        kind = checkpoint_format(path)
        if kind not in roles:
            hint = ""
            if path.parent.parent.name == "checkpoints":  # a trainer's resume state: the model sits beside the folder
                hint = f"; that is a training run's resume state, the model is the run folder's *.safetensors " \
                       f"({path.parent.parent.parent})"
            raise UserError(f"{path}: neither a NED manipulator nor a neural renderer checkpoint (format {kind!r})"
                            + hint)
        if roles[kind] in found:
            raise UserError(f"two {roles[kind]} checkpoints given: {found[roles[kind]]} and {path}")
        found[roles[kind]] = path
    wanted = {"manipulator": args.manipulator == "ned", "renderer": args.renderer == "neural"}
    flag = {"manipulator": "--manipulator ned", "renderer": "--renderer neural"}
    for role, needed in wanted.items():
        if needed and role not in found:
            raise UserError(f"{flag[role]} needs --checkpoint PATH of a trained {role}")
        if role in found and not needed:
            raise UserError(f"--checkpoint {found[role]} is a {role}: add {flag[role]} to use it")
    return found


def main(argv=None) -> None:
    args = parse_args(argv)
    if (args.emotion is None) == (args.reference is None):
        raise UserError("give exactly one of --emotion or --reference")
    if not 0.0 <= args.intensity <= 1.0:
        raise UserError(f"--intensity must be between 0 and 1, got {args.intensity}")
    checkpoints = sort_checkpoints(args)
    face = int(args.face) if args.face.isdigit() else args.face
    if face not in ("largest", "all") and not isinstance(face, int):
        raise UserError(f"--face must be 'largest', 'all' or a track id (an integer), got {args.face!r}")
    if face == "all" and (args.params or args.save_params):
        raise UserError("--face all edits every face, and a params file holds one: drop --params / --save-params, or "
                        "choose one face (--face ID)")
    if face == "all" and args.renderer == "neural":
        raise UserError("--face all: a neural renderer draws the one actor it was trained on; choose one face (--face)")
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")

    from ned_outlier.batch import expand_inputs

    inputs = expand_inputs(args.video)
    if len(inputs) > 1 or any(path.is_dir() for path in args.video):
        return edit_batch(args, inputs)
    if args.out_dir is not None and args.out is not None:
        raise UserError("give --out (the output file) or --out-dir (its folder), not both")
    edit_input(replace_args(args, video=inputs[0], out=planned_output(args, inputs[0])), face, checkpoints)


def target_label(args) -> str:
    """The name part of the output: the canonical emotion, or like_<reference stem>."""
    return normalise_emotion(args.emotion) if args.emotion is not None else f"like_{args.reference.stem}"


def replace_args(args, **values) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), **values})


def planned_output(args, video: Path) -> Path:
    """Where `video`'s edit goes: output_path's name, in --out-dir when one is given."""
    out = output_path(replace_args(args, video=video), target_label(args))
    return out if args.out_dir is None else args.out_dir / out.name


def say(text: str) -> None:
    """Print `text` and its newline in one write, flushed: under `accelerate launch` the ranks share one pipe, and
    with unbuffered output (PYTHONUNBUFFERED) print's separate writes of text and newline interleaved their lines."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def edit_batch(args, inputs: list[Path]) -> None:
    """Edit each input in its own process (this script with that input alone), --jobs at a time, skipping those
    whose outputs exist; under `accelerate launch` this process takes accelerate's share of the inputs. Prints the
    summary; UserError when any input failed."""
    from ned_outlier.batch import Outcome, run_commands, summary, this_process_share

    for flag, given in (("--out", args.out), ("--params", args.params), ("--save-params", args.save_params)):
        if given is not None:
            raise UserError(f"{flag} names one file: a batch writes one output per input (--out-dir for where)")
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        check_writable(args.out_dir / "probe")
    outputs = {video: planned_output(args, video) for video in inputs}
    seen: dict[Path, Path] = {}
    for video, out in outputs.items():
        if out.resolve() in seen:
            raise UserError(f"{seen[out.resolve()]} and {video} would both be edited into {out}: give them other names "
                            "or leave out --out-dir")
        seen[out.resolve()] = video
    mine = this_process_share(inputs)
    shared = input_options(args)
    outcomes, commands = {}, []
    for video in mine:
        out = outputs[video]
        preview = out.with_name(f"{out.stem}_preview{out.suffix}") if args.preview else None
        if out.exists() and (preview is None or preview.exists()) and not args.overwrite:
            outcomes[video] = Outcome(str(video), "skipped", f"{out} exists (--overwrite to edit it again)")
        else:
            commands.append((str(video), [sys.executable, str(Path(__file__).resolve()), str(video), *shared,
                                          "--out", str(out), "--quiet",
                                          *(["--overwrite"] if out.exists() or preview and preview.exists() else [])]))
    say(f"{len(mine)} inputs ({len(mine) - len(commands)} done already), {args.jobs} at a time")

    def report(outcome) -> None:
        say(f"{outcome.status}: {outcome.item}" + (f": {outcome.reason}" if outcome.status == "failed" else ""))

    for outcome in run_commands(commands, jobs=args.jobs, on_done=report):
        outcomes[Path(outcome.item)] = outcome
    ordered = [outcomes[video] for video in mine]
    say(summary(ordered))
    failed = sum(outcome.status == "failed" for outcome in ordered)
    if failed:
        raise UserError(f"{failed} of {len(ordered)} inputs failed (listed above)")


def input_options(args) -> list[str]:
    """The options each input's own run in a batch is given: every option of `args` but the inputs, the batch's own
    (--out-dir, --jobs) and those a batch refuses (--out, --params, --save-params); --overwrite and --quiet are
    added per input."""
    options = ["--emotion", args.emotion] if args.emotion is not None else ["--reference", str(args.reference)]
    options += ["--intensity", repr(args.intensity), "--mouth", args.mouth, "--manipulator", args.manipulator,
                "--renderer", args.renderer, "--face", str(args.face), "--seed", str(args.seed),
                "--config", str(args.config), "--reconstruct-config", str(args.reconstruct_config)]
    for checkpoint in args.checkpoint:
        options += ["--checkpoint", str(checkpoint)]
    return options + reconstruction_options(args) + (["--preview"] if args.preview else [])


def edit_input(args, face, checkpoints: dict[str, Path]) -> None:
    """One input (args.video): its outputs checked and claimed, then edited."""
    from ned_outlier.io.atomic import claim_outputs, ensure_not_input
    from ned_outlier.io.video import VideoReader

    # Everything that can be checked is checked here, before any model is loaded or frame reconstructed.
    emotion = normalise_emotion(args.emotion) if args.emotion is not None else None
    out = output_path(args, target_label(args))
    preview = out.with_name(f"{out.stem}_preview{out.suffix}") if args.preview else None
    inputs = [args.video] + ([args.reference] if args.reference else [])
    for path in [out, preview, args.save_params]:
        if path is not None:
            ensure_not_input(path, *inputs)
            check_writable(path)
    for path in inputs:
        VideoReader(path)  # a readable video: UserError for a missing, empty or foreign file
    # Locked for the whole run (a second edit of the same output fails at once), refused if there unless --overwrite.
    with claim_outputs([out, preview, args.save_params], overwrite=args.overwrite):
        edit(args, emotion, out, preview, face, checkpoints)


def edit(args, emotion: str | None, out: Path, preview: Path | None, face, checkpoints: dict[str, Path]) -> None:
    """The checks that need the configs and files loaded, then the reconstruction (unless --params) and the edit."""
    from ned_outlier.config import load_config, replace_fields
    from ned_outlier.pipeline import edit_video, load_edit_config, require_parts_for
    from ned_outlier.reconstruction.params import load_params_of
    from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct_faces

    params = load_params_of(args.params, args.video) if args.params is not None else None
    config = load_edit_config(args.config, [emotion] if emotion is not None and args.manipulator == "facs" else [])
    reconstruction = replace_fields(load_config(args.reconstruct_config, ReconstructionConfig),
                                    reconstruction_overrides(args))
    manipulator = None
    if args.manipulator == "ned":
        from ned_outlier.manipulator.ned.inference import NedManipulator

        manipulator = NedManipulator(checkpoints["manipulator"], seed=args.seed)
    neural_renderer = None
    if args.renderer == "neural":
        from ned_outlier.renderer.neural.checkpoint import load_renderer

        neural_renderer = load_renderer(checkpoints["renderer"])
        trained_on = Path(neural_renderer.trained_on).name
        if trained_on and trained_on != args.video.name:
            print(f"note: the renderer was trained on {trained_on}; a per-actor renderer draws that actor's face",
                  file=sys.stderr)

    require_parts_for(params.schema.backend if params is not None else reconstruction.backend, manipulator,
                      neural_renderer)  # before minutes of reconstruction
    faces = [params] if params is not None else reconstruct_faces(args.video, reconstruction, face=face,
                                                                  progress=not args.quiet)
    if args.save_params is not None:
        print(f"wrote {faces[0].save(args.save_params)}")
    report = edit_video(args.video, out, config, emotion=emotion, reference=args.reference,
                        intensity=args.intensity, mouth=args.mouth, params=faces, reconstruction=reconstruction,
                        preview=preview, progress=not args.quiet, manipulator=manipulator,
                        neural_renderer=neural_renderer)
    print(report.describe())
    print(f"wrote {report.output}")
    if report.preview:
        print(f"wrote {report.preview}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
