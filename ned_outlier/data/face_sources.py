"""Faces to edit from media a config names: a video's tracked face, each face of a photo (cut out with context first,
so that the editor sees one face), each image of a stack such as skimage's LFW subset. The synthetic emotion set
(recognition/data/synthetic.py) and SynthMEAD (ned_outlier/data/synthmead.py) find their identities here.

    source = SourceConfig(media="skimage:astronaut")
    faces = photo_faces("astronaut", source, cut, FaceDetector(), workdir, skipped)   # cut: region_size, ...
    params = fit_face(faces[0], ReconstructionConfig())

A photo is a one-frame video to the reconstructor (its one detection makes the track: TrackerConfig.min_detections
asks a clip for no more detections than it has keyframes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ned_outlier.assets import asset_path
from ned_outlier.errors import UserError
from ned_outlier.face.crop import CropConfig, apply_affine, crop_matrices, warp_to_crop
from ned_outlier.face.detector import FaceDetector
from ned_outlier.io.image import is_image, read_image, write_image
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct

MESH_POINTS = 468  # the face mesh without the iris points


class PhotoCut(Protocol):
    """How photo_faces cuts a face out of a photo (SetConfig and SynthConfig both say): the cut-out's side in
    pixels, its context around the face box (fraction of its side, in total), and the short side below which a
    photo is upscaled before face detection."""

    region_size: int
    region_margin: float
    min_photo_side: int


@dataclass(frozen=True)
class SourceConfig:
    """Where faces come from.

    media: `asset:<name>` (a file that ships in an installed package, `python -m ned_outlier.assets` lists them),
        `skimage:<name>` (an image or image stack of skimage.data, e.g. astronaut, lfw_subset) or a file path
        (a photo if its suffix is an image's, else a video).
    frames: frames edited per video, one drawn at random from each of `frames` equal runs of the face frames.
    limit: only the first `limit` images of a stack (0 = all; lfw_subset: its first 100 are faces).
    first: the stack's images before this index are left out (identities keep their index in the stack, so
        `first: 48` starts at lfw_048: a set disjoint from one made with `limit: 48`).
    """

    media: str
    frames: int = 1
    limit: int = 0
    first: int = 0

    def __post_init__(self) -> None:
        if self.frames < 1 or self.limit < 0 or self.first < 0:
            raise ValueError(f"frames must be >= 1 and limit and first >= 0, got {self.frames}, {self.limit}, "
                             f"{self.first}")


@dataclass(frozen=True)
class Face:
    """One identity to edit: its media file (a video, or a photo's cut-out written as a PNG) and where it came from."""

    identity: str
    source: str
    media: Path
    video: bool
    frames: int
    area: tuple[float, float, float, float] | None = None
    """The part of the media that shows the photo, x0, y0, x1, y1 (pixel edges); None: all of it."""
    track: int | str = "largest"
    """The face of the media to reconstruct: `reconstruct`'s `face` (a cut-out may show parts of neighbours)."""


def media_path(media: str) -> Path:
    """The file of an `asset:` or plain-path media entry."""
    path = asset_path(media.removeprefix("asset:")) if media.startswith("asset:") else Path(media)
    if not path.is_file():
        raise UserError(f"source media not found: {path}")
    return path


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An image of any dtype skimage knows, grey or RGB(A), as RGB uint8 (H, W, 3)."""
    from skimage.util import img_as_ubyte

    image = img_as_ubyte(image)
    return np.ascontiguousarray(np.dstack([image] * 3) if image.ndim == 2 else image[..., :3])


def load_photos(source: SourceConfig) -> list[np.ndarray]:
    """The RGB images of a photo source: one, or `limit` of a stack from index `first` on."""
    if source.media.startswith("skimage:"):
        import skimage.data

        name = source.media.removeprefix("skimage:")
        if not callable(getattr(skimage.data, name, None)):
            raise UserError(f"skimage.data has no image {name!r}")
        data = np.asarray(getattr(skimage.data, name)())
        images = list(data) if data.ndim == 3 and data.shape[-1] not in (3, 4) or data.ndim == 4 else [data]
    else:
        images = [read_image(media_path(source.media))]
    end = source.first + source.limit if source.limit else None
    return [as_rgb(image) for image in images[source.first:end]]


def is_photo(source: SourceConfig) -> bool:
    return source.media.startswith("skimage:") or is_image(media_path(source.media))


def upscale(image: np.ndarray, min_side: int) -> np.ndarray:
    """`image` enlarged (bicubic) so that its short side is at least `min_side`; unchanged if already so."""
    factor = min_side / min(image.shape[:2])
    if factor <= 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def square_matrix(box: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Image -> crop matrix (2, 3) of the (size, size) square around `box` (x0, y0, x1, y1) with `margin` of
    context (fraction of its side, in total)."""
    return crop_matrices(np.asarray(box, np.float64)[None], CropConfig(size=size, margin=margin))[0]


def visible_area(matrix: np.ndarray, image_shape: tuple[int, ...], size: int) -> tuple[float, float, float, float]:
    """The part x0, y0, x1, y1 of a (size, size) crop under `matrix` that shows the image (the rest is border)."""
    height, width = image_shape[:2]
    corners = apply_affine(matrix, np.array([[-0.5, -0.5], [width - 0.5, height - 0.5]]))
    return tuple(float(v) for v in np.clip(corners.reshape(-1), -0.5, size - 0.5))


def photo_faces(name: str, source: SourceConfig, config: PhotoCut, detector: FaceDetector, workdir: Path,
                skipped: list) -> list[Face]:
    """Every face of a photo source, each cut out into `workdir` as a PNG for the reconstructor."""
    photos = load_photos(source)
    faces = []
    for index, photo in enumerate(photos, start=source.first):
        photo = upscale(photo, config.min_photo_side)
        (found,) = detector.detect([photo])
        # a stack: each image's largest face (the detector lists it first); one photo: every face, left to right
        boxes = found.boxes[:1] if len(photos) > 1 else found.boxes[np.argsort(found.boxes[:, 0], kind="stable")]
        stem = f"{name}_{index:03d}" if len(photos) > 1 else name
        if not len(boxes):
            skipped.append((stem, "no face detected"))
        for k, box in enumerate(boxes):
            identity = f"{stem}_{k}" if len(boxes) > 1 else stem
            path = workdir / f"{identity}.png"
            matrix = square_matrix(box, config.region_size, config.region_margin)
            region = warp_to_crop(photo, matrix, config.region_size)
            write_image(path, region)
            area = visible_area(matrix, photo.shape, config.region_size)
            faces.append(Face(identity, name, path, video=False, frames=1, area=area,
                              track=centre_face(detector, region)))
    return faces


def centre_face(detector: FaceDetector, region: np.ndarray) -> int:
    """Index of the detection nearest the centre of a cut-out: in a one-frame video the tracker numbers the faces
    in detection order, so this is the track id of the face the cut-out was made for."""
    (found,) = detector.detect([region])
    if not len(found):
        return 0  # the reconstructor will find no face either, and say so
    centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
    return int(np.argmin(np.linalg.norm(centres - (np.array(region.shape[1::-1]) - 1) / 2, axis=1)))


def fit_face(face: Face, reconstruction: ReconstructionConfig) -> FaceParams:
    """The face's reconstruction; for a photo's cut-out, UserError unless the fitted face is the one in its centre
    (the region may hold a larger neighbour)."""
    if face.video:
        return reconstruct(face.media, reconstruction, progress=False)
    params = reconstruct(face.media, reconstruction, face.track, progress=False)
    points = params.landmarks[0, :MESH_POINTS, :2]
    centre = np.array([params.video.width, params.video.height]) / 2
    if not np.all((points.min(axis=0) < centre) & (centre < points.max(axis=0))):
        raise UserError("the face fitted in the cut-out is not the one at its centre")
    return params
