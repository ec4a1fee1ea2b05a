#!/usr/bin/env python
"""Reconstruction throughput and peak memory on the Pexels clip, and on the same clip looped 5 times, per backend.

Each measurement runs in a fresh process (so peak RSS is that run's own) and covers the whole job: decoding, face
detection and tracking, the backend's per-frame work (mediapipe-au: the face mesh and the AU fit; flame-deca: DECA's
encoder on each crop and FLAME; flame-fit: the face mesh and FLAME fitted to its 68 landmarks), and writing
params.npz + params.csv; `--preview` adds the mesh-overlay video. The FLAME backends run on stand-ins of the user's
files made here with the real sizes and layouts (FLAME's 5023 vertices and 9976 triangles, DECA's ResNet-50 with
random weights, a random landmark embedding): the work per frame is the real models', the codes are not (flame-fit's
iterations are fixed, so its time does not depend on them). Prints one row per backend and video:

    python benchmarks/reconstruct.py [--backend mediapipe-au flame-deca flame-fit] [--device cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FLAME_VERTICES, FLAME_TRIANGLES = 5023, 9976


def run_child(video: Path, out: Path, backend: str, device: str, preview: bool, threads: int) -> None:
    """Reconstruct `video` with `backend` in this process and print {frames, found, seconds, peak_rss_mb} as JSON."""
    import torch

    torch.set_num_threads(threads)
    from ned_outlier.reconstruction.export import write_params_csv
    from ned_outlier.reconstruction.flame_deca import FlameDecaConfig
    from ned_outlier.reconstruction.flame_fit import FlameFitConfig
    from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct
    from ned_outlier.viz import write_mesh_preview

    config = ReconstructionConfig(backend=backend, flame=FlameDecaConfig(device=device),
                                  flame_fit=FlameFitConfig(device=device))
    start = time.perf_counter()
    params = reconstruct(video, config, progress=False)
    params.save(out / "params.npz")
    write_params_csv(params, out / "params.csv")
    if preview:
        write_mesh_preview(video, params, out / "preview.mp4", progress=False)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": params.num_frames, "found": int(params.face_found.sum()), "seconds": seconds,
                      "peak_rss_mb": peak_mb}))


def stand_in_files(folder: Path) -> dict[str, str]:
    """FLAME-, DECA- and landmark-embedding-format files of the real sizes (random values), as the environment
    variables that name the user's files."""
    from tests.reconstruction.deca_fixture import DECA_OUTPUTS, random_state, regressor_shapes, write_deca_checkpoint
    from tests.reconstruction.flame_fixture import (flame_arrays, landmark_embedding, write_flame_model,
                                                    write_landmark_embedding)

    flame = write_flame_model(folder / "generic_model.pkl", flame_arrays(FLAME_VERTICES, FLAME_TRIANGLES))
    deca = write_deca_checkpoint(folder / "deca_model.tar", random_state(regressor_shapes(DECA_OUTPUTS), seed=0))
    embedding = write_landmark_embedding(folder / "landmark_embedding.npy", landmark_embedding(FLAME_TRIANGLES))
    return {"FLAME_MODEL_PATH": str(flame), "DECA_MODEL_PATH": str(deca),
            "FLAME_LANDMARK_EMBEDDING_PATH": str(embedding)}


def loop_video(video: Path, times: int, out: Path) -> Path:
    """The clip repeated `times` times (stream copy, no re-encoding)."""
    import imageio_ffmpeg

    target = out / f"looped_{times}x.mp4"
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", str(times - 1), "-i", str(video),
               "-c", "copy", str(target)]
    subprocess.run(command, check=True)
    return target


def main() -> None:
    from ned_outlier.reconstruction.reconstructor import BACKENDS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", nargs="+", choices=[b for b in BACKENDS if b != "flame-emoca"],
                        default=["mediapipe-au"], help="backends to time (default: %(default)s; flame-emoca runs "
                        "flame-deca's encoder twice, so it is left out)")
    parser.add_argument("--device", default=None, help="torch device of the FLAME backends' encoder and FLAME "
                        "(default: cuda when there is one, else cpu)")
    parser.add_argument("--preview", action="store_true", help="also write the mesh-overlay preview video")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--loops", type=int, default=5, help="length of the long video in clips (default: 5)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.child:
        run_child(args.child, args.child_out, args.backend[0], args.device, args.preview, args.threads)
        return

    from ned_outlier.assets import asset_path

    clip = asset_path("pexels_video")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        environment = {**os.environ, **stand_in_files(tmp)} if set(args.backend) - {"mediapipe-au"} else os.environ
        videos = {"pexels 1x": clip, f"pexels {args.loops}x": loop_video(clip, args.loops, tmp)}
        print(f"{'backend':13s} {'device':6s} {'video':10s} {'frames':>7s} {'found':>7s} {'seconds':>8s} "
              f"{'frames/s':>9s} {'peak RSS MB':>12s}")
        for backend in args.backend:
            device = "cpu" if backend == "mediapipe-au" else args.device
            for name, video in videos.items():
                command = [sys.executable, __file__, "--child", str(video), "--child-out", str(tmp), "--backend",
                           backend, "--device", device, "--threads", str(args.threads)]
                command += ["--preview"] if args.preview else []
                output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout
                result = json.loads(output.splitlines()[-1])
                print(f"{backend:13s} {device:6s} {name:10s} {result['frames']:7d} {result['found']:7d} "
                      f"{result['seconds']:8.1f} {result['frames'] / result['seconds']:9.1f} "
                      f"{result['peak_rss_mb']:12.0f}", flush=True)


if __name__ == "__main__":
    main()
