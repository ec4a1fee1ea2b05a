#!/usr/bin/env python
"""Change the facial expression in a video or a photo to a target emotion, or to the expression style of a reference
clip.

The speech (mouth opening), identity, head pose, background, frame rate, size and audio are kept. Works offline on
CPU: 3D face reconstruction per frame (MediaPipe mesh + a linear FACS model), EMFACS emotion prototypes, and a
mesh-guided warp of the source pixels. Trained parts replace the defaults: a NED manipulator (train_ned.py) and a
neural renderer trained on this actor (train_renderer.py).

    python scripts/edit.py --emotion happy video.mp4              # -> video_happy.mp4 beside the input
    python scripts/edit.py --emotion sad photo.jpg --preview      # -> photo_sad.jpg + photo_sad_preview.jpg
    python scripts/edit.py --reference other.mp4 video.mp4 --out styled.mp4 --preview
    python scripts/edit.py --emotion sad video.mp4 --renderer neural --checkpoint runs/renderer/renderer.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402
from ned_outlier.labels import EMOTIONS, normalise_emotion  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "edit" / "default.yaml"
DEFAULT_RECONSTRUCT_CONFIG = REPO / "configs" / "reconstruct" / "default.yaml"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path, help="input video or photo (jpg, png, webp, bmp; EXIF orientation "
                                                  "honoured); never modified")
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
    parser.add_argument("--preview", action="store_true",
                        help="also write <out>_preview.mp4 (a photo: <out>_preview.jpg ...): original | edited")
    parser.add_argument("--face", default="largest",
                        help="which face when several are tracked: 'largest' (default) or a track id")
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
    if face != "largest" and not isinstance(face, int):
        raise UserError(f"--face must be 'largest' or a track id (an integer), got {args.face!r}")

    from ned_outlier.io.atomic import claim_outputs, ensure_not_input
    from ned_outlier.io.video import VideoReader

    # Everything that can be checked is checked here, before any model is loaded or frame reconstructed.
    emotion = normalise_emotion(args.emotion) if args.emotion is not None else None
    out = output_path(args, emotion or f"like_{args.reference.stem}")
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
    from ned_outlier.config import load_config
    from ned_outlier.pipeline import edit_video, load_edit_config
    from ned_outlier.reconstruction.params import load_params_of
    from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, describe_frames, reconstruct

    params = load_params_of(args.params, args.video) if args.params is not None else None
    config = load_edit_config(args.config, [emotion] if emotion is not None and args.manipulator == "facs" else [])
    reconstruction = load_config(args.reconstruct_config, ReconstructionConfig)
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

    if params is None:
        params = reconstruct(args.video, reconstruction, face=face, progress=not args.quiet)
    if args.save_params is not None:
        print(f"wrote {params.save(args.save_params)}")
    report = edit_video(args.video, out, config, emotion=emotion, reference=args.reference,
                        intensity=args.intensity, mouth=args.mouth, params=params, reconstruction=reconstruction,
                        preview=preview, progress=not args.quiet, manipulator=manipulator,
                        neural_renderer=neural_renderer)
    missing = describe_frames(~params.face_found[:report.frames])
    print(f"edited the face in {report.edited} of {report.frames} frames"
          + (f" ({report.fold_limited} with the change scaled down to avoid folding)" if report.fold_limited else "")
          + (f"; {missing} without a face, left as they were" if missing else ""))
    print(f"wrote {report.output}")
    if report.preview:
        print(f"wrote {report.preview}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
