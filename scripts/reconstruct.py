#!/usr/bin/env python
"""Reconstruct the face in a video: per-frame expression/mouth codes, head pose and fitted 3D mesh.

Writes into --out: params.npz (FaceParams, reloadable by the editor), params.csv (per-frame AU intensities and
pose) and preview.mp4 (the fitted mesh drawn over the video, with its audio); existing ones only with --overwrite.

    python scripts/reconstruct.py video.mp4 --out tracks/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from ned_outlier.cli import add_reconstruction_arguments, reconstruction_overrides, run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402

DEFAULT_CONFIG = REPO / "configs" / "reconstruct" / "default.yaml"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path, help="input video (any format ffmpeg reads)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (created if missing; removed again if the run fails with it empty)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="reconstruction YAML (default: %(default)s)")
    parser.add_argument(
        "--face", default="largest",
        help="which face when several are tracked: 'largest' (default) or a track id printed by a previous run",
    )
    parser.add_argument("--detect-every", type=int, help="run the face detector on every N-th frame (config: tracker.detect_every)")
    parser.add_argument("--smooth", type=float, help="temporal smoothing of codes and pose, sigma in frames (config: smooth_sigma)")
    parser.add_argument("--no-preview", action="store_true", help="skip the mesh-overlay preview video")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the outputs of an earlier run in --out (without it they are an error)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_reconstruction_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import numpy as np

    from ned_outlier.config import load_config, replace_fields
    from ned_outlier.io.atomic import claim_outputs, ensure_not_input, output_folder
    from ned_outlier.reconstruction.flame_deca import BACKENDS as FLAME_DECA_BACKENDS
    from ned_outlier.reconstruction.export import write_params_csv
    from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, describe_frames, reconstruct

    config = load_config(args.config, ReconstructionConfig)
    overrides = {"tracker.detect_every": args.detect_every, "smooth_sigma": args.smooth}
    overrides = {**{k: v for k, v in overrides.items() if v is not None}, **reconstruction_overrides(args)}
    config = replace_fields(config, overrides)
    face = int(args.face) if args.face.isdigit() else args.face
    if face != "largest" and not isinstance(face, int):
        raise UserError(f"--face must be 'largest' or a track id (an integer), got {args.face!r}")
    outputs = [args.out / name for name in ("params.npz", "params.csv", *(() if args.no_preview else ("preview.mp4",)))]
    for path in outputs:
        ensure_not_input(path, args.video)
    # The folder is removed again if this fails before writing into it; the outputs are locked for the run.
    with output_folder(args.out), claim_outputs(outputs, overwrite=args.overwrite):
        params = reconstruct(args.video, config, face=face, progress=not args.quiet)
        written = [params.save(outputs[0]), write_params_csv(params, outputs[1])]
        if not args.no_preview:
            from ned_outlier.viz import write_mesh_preview

            written.append(write_mesh_preview(args.video, params, outputs[2], progress=not args.quiet))
    found = int(params.face_found.sum())
    missing = describe_frames(~params.face_found)
    regressed = params.schema.backend in FLAME_DECA_BACKENDS  # DECA observes no points: nothing to be off from
    print(f"face {params.track_id} found in {found} of {params.num_frames} frames"
          + (f"; {missing} without it" if missing else "")
          + ("; codes regressed by the encoder (no fit error)" if regressed else
             f"; median fit error {float(np.nanmedian(params.fit_error)):.3f} inter-ocular distances"))
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
