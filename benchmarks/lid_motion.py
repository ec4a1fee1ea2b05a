#!/usr/bin/env python
"""How far each target (or one unit of each action unit, --per-au) moves the lids and brows: the edit's intended
vertical move (before the fold limits) of the middle of the upper lid, of the lower lid and of the brow's lower
edge, in frame pixels (+ down, both eyes' mean), on chosen frames of the packaged clips, with the reconstruction
edit_quality.py keeps.

A surprised face raises the upper lid and barely moves the lower one; the PLS AU model's brow raisers also dropped
the lower lid and its upper lid raiser lifted the brows (`edit_basis.regions` brows / eyes / upper_lids confine
them; `--config configs/ned/synthmead_edit.yaml` shows the settings before), which this shows per target or AU.

    python benchmarks/lid_motion.py                                   # Pexels f250 and f420, webcam f5 and f40
    python benchmarks/lid_motion.py --config my_edit.yaml --frames pexels:120,250
    python benchmarks/lid_motion.py --per-au --frames pexels:250        # each AU's move per unit instead
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.cli import run_cli  # noqa: E402

EMOTIONS = ("happy", "sad", "surprised", "angry", "fear", "disgusted", "neutral")
UPPER_LIDS, LOWER_LIDS = (159, 386), (145, 374)  # the middle of each eye's upper and lower lid
DEFAULT_FRAMES = "pexels:250,420;webcam:5,40"


def parse_frames(text: str) -> dict[str, list[int]]:
    """'pexels:250,420;webcam:5' -> {'pexels': [250, 420], 'webcam': [5]}; UserError on anything else."""
    from ned_outlier.errors import UserError

    frames = {}
    for part in text.split(";"):
        clip, _, numbers = part.partition(":")
        try:
            frames[clip.strip()] = [int(number) for number in numbers.split(",")]
        except ValueError:
            raise UserError(f"--frames: expected CLIP:F,F;CLIP:F, got {text!r}") from None
    return frames


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="edit YAML (default: configs/edit/default.yaml)")
    parser.add_argument("--frames", default=DEFAULT_FRAMES, help="CLIP:F,F;CLIP:F (default: %(default)s)")
    parser.add_argument("--per-au", action="store_true",
                        help="the moves of one unit of each action unit, not of each target")
    parser.add_argument("--params-dir", type=Path, default=REPO / "out" / "quality",
                        help="where edit_quality.py keeps <clip>/params.npz; a clip without one is reconstructed "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    import numpy as np

    from edit_quality import CLIPS  # this folder's
    from ned_outlier.assets import asset_path
    from ned_outlier.errors import UserError
    from ned_outlier.pipeline import code_changes, load_edit_config, source_lip_gaps, target_codes
    from ned_outlier.reconstruction.au_model import load_au_model
    from ned_outlier.reconstruction.edit_basis import EditGeometry
    from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
    from ned_outlier.reconstruction.params import FaceParams
    from ned_outlier.reconstruction.reconstructor import reconstruct
    from ned_outlier.reconstruction.topology import LOWER_BROWS

    config = load_edit_config(args.config)
    model, _ = mediapipe_au_model()
    brows = [v for brow in LOWER_BROWS for v in brow]
    chosen = parse_frames(args.frames)
    unknown = sorted(set(chosen) - set(CLIPS))
    if unknown:
        raise UserError(f"unknown clip {unknown[0]!r} (valid: {', '.join(CLIPS)})")
    print("vertical move in pixels (+ down): upper lid / lower lid / brow")
    for clip, frames in chosen.items():
        path = args.params_dir / clip / "params.npz"
        params = FaceParams.load(path) if path.is_file() else reconstruct(asset_path(CLIPS[clip].asset))
        geometry = EditGeometry(load_au_model(), params.schema.mouth_names, config.edit_basis)
        gaps = source_lip_gaps(params)
        for frame in frames:
            if not 0 <= frame < params.num_frames or not params.face_found[frame]:
                raise UserError(f"{clip} has no face in frame {frame}")
        cells = {frame: [] for frame in frames}
        if args.per_au:
            changes = [(name, np.tile(np.eye(len(model.au_names))[k], (params.num_frames, 1)))
                       for k, name in enumerate(model.au_names)]
        else:
            changes = [(emotion, code_changes(params, target_codes(config, params, emotion, None, 1.0, "keep"),
                                              model.au_names, config.temporal_sigma)) for emotion in EMOTIONS]
        for name, delta in changes:
            for frame in frames:
                move = geometry.displacement(delta[frame], params.rotation[frame], params.scale[frame],
                                             source_gap=gaps[frame])[:, 1]
                cells[frame].append(f"{name} {move[list(UPPER_LIDS)].mean():+.1f} "
                                    f"{move[list(LOWER_LIDS)].mean():+.1f} {move[brows].mean():+.1f}")
        for frame in frames:
            print(f"{clip} f{frame}: " + " | ".join(cells[frame]))


if __name__ == "__main__":
    sys.exit(run_cli(main))
