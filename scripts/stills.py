#!/usr/bin/env python
"""A picture of edits: chosen frames of a video, original then one column per target emotion, cropped to the face.

    python scripts/stills.py video.mp4 --params out/pexels/params.npz --frames 120,250,420 --out stills.png
    python scripts/stills.py video.mp4 --renderer neural --checkpoint runs/actor/renderer.safetensors --out n.png

With --renderer neural a "re-rendered" column shows the renderer on the frame's own mesh (no edit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ned_outlier.cli import run_cli  # noqa: E402
from ned_outlier.errors import UserError  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--params", type=Path, help="saved reconstruction of the video (else reconstructed now)")
    parser.add_argument("--frames", default="120,250,420", help="comma-separated frame numbers")
    parser.add_argument("--emotions", default="neutral,happy,sad,surprised,angry,fear,disgusted")
    parser.add_argument("--mouth", choices=("keep", "edit"), default="keep")
    parser.add_argument("--renderer", choices=("warp", "neural"), default="warp")
    parser.add_argument("--checkpoint", type=Path, help="with --renderer neural: renderer.safetensors")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def face_box(points, shape, margin=0.25):
    import numpy as np

    low, high = points.min(axis=0), points.max(axis=0)
    centre, side = (low + high) / 2, (high - low).max() * (1 + 2 * margin)
    x0, y0 = np.maximum(np.round(centre - side / 2).astype(int), 0)
    return x0, y0, min(x0 + int(side), shape[1]), min(y0 + int(side), shape[0])


def contact_sheet(columns, boxes, size=200):
    """One row per frame of `boxes` ({frame: face_box}), one tile per column of `columns` ({name: {frame: RGB
    image}}, in order): the box cut out, resized to size x size and labelled with the column's name (the first
    column's with the frame number too). Returns the RGB image."""
    import cv2
    import numpy as np

    rows = []
    for i, (x0, y0, x1, y1) in boxes.items():
        tiles = []
        for column, (name, images) in enumerate(columns.items()):
            tile = cv2.resize(np.ascontiguousarray(images[i][y0:y1, x0:x1]), (size, size), interpolation=cv2.INTER_AREA)
            label = f"{name}" + (f" #{i}" if column == 0 else "")
            for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # white on a dark outline
                cv2.putText(tile, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, thickness, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    from ned_outlier.io.image import write_image
    from ned_outlier.io.video import VideoReader
    from ned_outlier.pipeline import FrameEditor, load_edit_config, target_codes
    from ned_outlier.reconstruction.params import load_params_of
    from ned_outlier.reconstruction.reconstructor import reconstruct
    from ned_outlier.labels import normalise_emotion

    frames = sorted({int(f) for f in args.frames.split(",")})
    emotions = [normalise_emotion(e) for e in args.emotions.split(",")]
    config = load_edit_config(None, emotions)
    if args.params:
        params = load_params_of(args.params, args.video)
    else:
        params = reconstruct(args.video, progress=not args.quiet)
    missing = [f for f in frames if f >= params.num_frames or not params.face_found[f]]
    if missing:
        raise UserError(f"no face in frame(s) {missing} of {args.video}")
    reader = VideoReader(args.video)
    originals = {i: frame for i, frame in enumerate(reader) if i in frames}
    neural = None
    if args.renderer == "neural":
        from ned_outlier.renderer.neural.checkpoint import load_renderer

        if args.checkpoint is None:
            raise UserError("--renderer neural needs --checkpoint PATH (renderer.safetensors of train_renderer.py)")
        neural = load_renderer(args.checkpoint, params.schema)
    columns = {"original": originals}
    targets = [("re-rendered", emotions[0], 0.0)] * (neural is not None) + [(e, e, 1.0) for e in emotions]
    for name, emotion, intensity in targets:
        editor = FrameEditor(params, target_codes(config, params, emotion, None, intensity, args.mouth), config,
                             neural)
        editor.prepare(reader, set(frames))
        columns[name] = {i: editor.render(i, originals[i]) for i in frames}
    boxes = {i: face_box(params.landmarks[i, :468, :2], originals[i].shape) for i in frames}
    sheet = contact_sheet(columns, boxes)
    write_image(args.out, sheet)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
