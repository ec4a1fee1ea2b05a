"""Video -> FaceParams with the offline default backend `mediapipe-au`.

Two streaming passes over the video, so memory does not grow with the number of frames beyond the per-frame
parameters themselves (about 12 KB a frame):
  1. detect and track faces (MTCNN on every k-th frame, median-smoothed boxes; `ned_outlier.face`);
  2. crop the chosen face, run the MediaPipe mesh on the crop, map the landmarks back to frame pixels.
Then, on the landmarks alone: estimate the subject's neutral mesh and fit AUs + pose to every frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from tqdm import tqdm

from ned_outlier.errors import UserError
from ned_outlier.face.crop import CropConfig, apply_affine, crop_matrices, invert_affine, warp_to_crop
from ned_outlier.face.detector import DetectorConfig, FaceDetector, small_face_hint
from ned_outlier.face.tracker import TrackerConfig, select_tracks, track_faces
from ned_outlier.io.video import VideoReader
from ned_outlier.reconstruction.au_model import AUMeshModel
from ned_outlier.reconstruction.hands import HandConfig, HandFinder, fill_hands, hand_over_mouth, real_hands, spread
from ned_outlier.reconstruction.fit import FLIP, AUFitter, FitConfig
from ned_outlier.reconstruction.identity import IdentityConfig, estimate_neutral, fit_sequence
from ned_outlier.reconstruction.mediapipe_mesh import MeshConfig, MeshLandmarker
from ned_outlier.reconstruction.flame_deca import BACKENDS as FLAME_BACKENDS, FlameDecaConfig
from ned_outlier.reconstruction.flame_fit import BACKEND as FLAME_FIT_BACKEND, FlameFitConfig, FlameFitReconstructor
from ned_outlier.reconstruction.mediapipe_au import BACKEND, mediapipe_au_model
from ned_outlier.reconstruction.params import MAX_HANDS, FaceParams, VideoMeta, no_hands
from ned_outlier.reconstruction.topology import OUTER_EYE_CORNERS, OUTER_LIPS

log = logging.getLogger(__name__)
BACKENDS = (BACKEND, *FLAME_BACKENDS, FLAME_FIT_BACKEND)

@dataclass(frozen=True)
class ReconstructionConfig:
    """Every setting of `reconstruct`; read from YAML (configs/reconstruct/*.yaml) with `load_config`.

    smooth_sigma: Gaussian temporal smoothing of codes and pose, in frames (>= 0; 0 = off; mediapipe-au only).
    backend: "mediapipe-au" (offline, the default: mesh, hands and fit settings apply), "flame-deca" /
    "flame-emoca" (NED's: DECA's or EMOCA's encoder + FLAME from the user's files, `flame`; flame_deca.py) or
    "flame-fit" (FLAME fitted to the face mesh's 68 landmarks: FLAME from `flame.flame_model`, the rest from
    `flame_fit`; the mesh and hands settings apply; flame_fit.py).
    """

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    hands: HandConfig = field(default_factory=HandConfig)
    smooth_sigma: float = 0.0
    backend: str = BACKEND
    flame: FlameDecaConfig = field(default_factory=FlameDecaConfig)
    flame_fit: FlameFitConfig = field(default_factory=FlameFitConfig)

    def __post_init__(self) -> None:
        if not self.smooth_sigma >= 0:  # NaN too
            raise ValueError(f"smooth_sigma must be >= 0 (0: off), got {self.smooth_sigma}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")


def extract_landmarks(
    reader: VideoReader, crops: np.ndarray, present: np.ndarray, config: "ReconstructionConfig", progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pass 2: crop matrices (T, 2, 3) and presence (T,) -> landmarks (T, 478, 3) in frame pixels (NaN where not
    found), mouth_occluded (T,) (a hand over the mouth) and hands (T, 2, 21, 2) in frame pixels (NaN: no hand;
    only hands reaching in from beyond the face's outline: `real_hands`; filled in between checked frames:
    `fill_hands`)."""
    frames = len(present)
    landmarks = np.full((frames, 478, 3), np.nan, dtype=np.float32)
    hand_points = no_hands(frames)
    hand_flags = np.zeros(frames, dtype=bool)
    hand_checked = np.zeros(frames, dtype=bool)
    to_frame = invert_affine(crops)
    with MeshLandmarker(config.mesh) as mesh:
        hands = HandFinder(config.hands)
        tracking = False
        for index, frame in enumerate(tqdm(reader, total=frames, desc="face mesh", disable=not progress)):
            crop = warp_to_crop(frame, crops[index], config.crop.size) if present[index] else None
            points = mesh(crop) if crop is not None else None
            if points is None:
                if tracking:
                    mesh.reset()  # the face was lost: detect afresh rather than track from a stale frame
                tracking = False
                continue
            tracking = True
            if index % config.hands.every == 0:
                hand_checked[index] = True
                found_hands = hands(crop)
                hand_flags[index] = hand_over_mouth(found_hands, points[:468, :2], points[list(OUTER_LIPS), :2],
                                                    config.hands.mouth_margin)
                for slot, hand in enumerate(real_hands(found_hands, points[:468, :2])[:MAX_HANDS]):
                    hand_points[index, slot] = apply_affine(to_frame[index], hand)
            crop_scale = np.hypot(*crops[index, 0, :2])
            landmarks[index, :, :2] = apply_affine(to_frame[index], points[:, :2])
            landmarks[index, :, 2] = points[:, 2] / crop_scale
        hands.close()
    mouth_occluded = spread(hand_flags, hand_checked, config.hands.every, config.hands.bridge)
    return landmarks, mouth_occluded, fill_hands(hand_points, hand_checked, config.hands.every)


def fit_landmarks(landmarks: np.ndarray, model: AUMeshModel, config: ReconstructionConfig, progress: bool) -> dict:
    """(T, 478, 3) landmarks (NaN rows = no face) -> per-frame float32 arrays of FaceParams (NaN where no face):
    aus (T, 20), rotation (T, 3, 3), scale (T,), translation (T, 3), vertices (T, 478, 3), fit_error (T,); and
    identity (478, 3)."""
    found = ~np.isnan(landmarks[:, 0, 0])
    neutral = estimate_neutral(model, landmarks, config.fit, config.identity)
    subject = model.with_mean(neutral)
    fitter = AUFitter(subject, config.fit)
    frames = len(landmarks)
    nan = lambda *shape: np.full((frames, *shape), np.nan, dtype=np.float32)  # noqa: E731
    out = {"aus": nan(model.n_aus), "rotation": nan(3, 3), "scale": nan(), "translation": nan(3),
           "vertices": nan(*landmarks.shape[1:])}
    with tqdm(total=int(found.sum()), desc="fit", disable=not progress) as bar:
        for segment in true_runs(found):
            for index, result in zip(segment, fit_sequence(fitter, (landmarks[i] for i in segment))):
                out["aus"][index] = result.aus
                out["rotation"][index] = result.pose.head_rotation
                out["scale"][index] = result.pose.scale
                out["translation"][index] = result.pose.translation
                out["vertices"][index] = result.vertices
                bar.update()
            if config.smooth_sigma > 0:
                _smooth_segment(out, segment, config.smooth_sigma, subject)
    interocular = np.linalg.norm(landmarks[:, OUTER_EYE_CORNERS[0]] - landmarks[:, OUTER_EYE_CORNERS[1]], axis=-1)
    out["fit_error"] = np.array([_rms(v, lm) for v, lm in zip(out["vertices"], landmarks)]) / interocular
    out["identity"] = neutral.astype(np.float32)
    return out


def _rms(fitted: np.ndarray, observed: np.ndarray) -> float:
    """RMS distance between two (V, 3) meshes."""
    return float(np.sqrt(((fitted - observed) ** 2).sum(-1).mean()))


def pose_vertices(model: AUMeshModel, aus: np.ndarray, rotation: np.ndarray, scale: np.ndarray,
                  translation: np.ndarray) -> np.ndarray:
    """Mesh in frame pixels: aus (T, 20), R_head (T, 3, 3), scale (T,), translation (T, 3) -> (T, V, 3)."""
    rotation_img = FLIP @ rotation
    return scale[:, None, None] * np.einsum("tij,tvj->tvi", rotation_img, model.vertices(aus)) + translation[:, None]


def true_runs(found: np.ndarray) -> list[np.ndarray]:
    """Runs of consecutive True frames, as index arrays."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], found.astype(np.int8), [0]])))
    return [np.arange(start, stop) for start, stop in zip(edges[::2], edges[1::2])]


def describe_frames(frames: np.ndarray, most: int = 6) -> str:
    """The True frames of a mask (T,) as runs of frame indices: "frame 7", "frames 3, 24-48 and 60-61"; after `most`
    runs, "... and 4 more runs"; "" when there is none."""
    runs = [f"{run[0]}" if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in true_runs(np.asarray(frames, bool))]
    if not runs:
        return ""
    shown = runs[:most] + ([f"{len(runs) - most} more runs"] if len(runs) > most else [])
    listing = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    return f"frame{'s' if len(runs) > 1 or '-' in runs[0] else ''} {listing}"


def _smooth_segment(out: dict, segment: np.ndarray, sigma: float, model: AUMeshModel, chunk: int = 256) -> None:
    """Gaussian-smooth codes and pose along time over one run of found frames; rotations re-orthonormalised; the
    mesh recomputed from the smoothed parameters (in chunks, so memory stays flat)."""
    for key in ("aus", "scale", "translation", "rotation"):
        out[key][segment] = gaussian_filter1d(out[key][segment], sigma, axis=0, mode="nearest")
    u, _, vt = np.linalg.svd(out["rotation"][segment])
    out["rotation"][segment] = u @ vt
    for start in range(0, len(segment), chunk):
        rows = segment[start : start + chunk]
        out["vertices"][rows] = pose_vertices(
            model, out["aus"][rows], out["rotation"][rows], out["scale"][rows], out["translation"][rows]
        )


def reconstruct(
    video: str | Path, config: ReconstructionConfig = ReconstructionConfig(), face: str | int = "largest",
    progress: bool = True, reconstruct_track=None
) -> FaceParams:
    """Reconstruct one tracked face of `video` (the largest by default, or a track id) in every frame; UserError
    naming `video` when it has no face (or no track `face`). reconstruct_track: `track_reconstructor(config)`,
    made once by a caller that reconstructs many videos (None: made here)."""
    if face == "all":
        raise ValueError("reconstruct makes one face: use reconstruct_faces for every face")
    return reconstruct_faces(video, config, face, progress, reconstruct_track)[0]


def reconstruct_faces(
    video: str | Path, config: ReconstructionConfig = ReconstructionConfig(), face: str | int = "all",
    progress: bool = True, reconstruct_track=None
) -> list[FaceParams]:
    """Reconstruct every tracked face of `video` ("all", by track id) or one ("largest", a track id), each in every
    frame, from one tracking pass; UserError naming `video` when it has no face (or no track `face`), or when no
    face mesh could be fitted to a face in any of its frames. reconstruct_track: as `reconstruct`'s."""
    if reconstruct_track is None:
        reconstruct_track = track_reconstructor(config)  # the backend's files are checked before any frame is read
    reader = VideoReader(video)
    with tqdm(total=reader.info.frame_count, desc="detect faces", disable=not progress) as bar:
        tracking = track_faces(reader, FaceDetector(config.detector), config.tracker,
                               progress=lambda done: bar.update(done - bar.n))
    try:
        tracks = select_tracks(tracking, face, small_face_hint(config.detector, *tracking.frame_size))
    except UserError as error:  # which video: an edit reconstructs its input and maybe a --reference clip
        raise UserError(f"{video}: {error}") from None
    if len(tracking.tracks) > 1:
        listing = ", ".join(f"{t.track_id} (frames {t.first_frame}-{t.last_frame})" for t in tracking.tracks)
        log.info("%d faces tracked: %s; reconstructing %s (--face to choose)", len(tracking.tracks), listing,
                 "every face" if face == "all" else f"face {tracks[0].track_id}")
    faces = [reconstruct_track(reader, tracking.frame_count, track, progress) for track in tracks]
    unfitted = [track.track_id for track, params in zip(tracks, faces) if params is None]
    if len(unfitted) == len(tracks):
        raise UserError(f"{video}: a face was detected but no face mesh could be fitted in any of its frames")
    if unfitted:
        log.warning("%s: no face mesh could be fitted to face %s in any frame: left as it is", video,
                    ", ".join(map(str, unfitted)))
    return [params for params in faces if params is not None]


def track_reconstructor(config: ReconstructionConfig):
    """The backend's `(reader, frame_count, track, progress) -> FaceParams | None` (None: no face could be fitted
    in any frame of the track); a FLAME backend loads and checks the user's files now."""
    if config.backend in FLAME_BACKENDS:
        from ned_outlier.reconstruction.flame_deca import FlameDecaReconstructor

        return FlameDecaReconstructor(config.backend, config.flame)
    if config.backend == FLAME_FIT_BACKEND:
        return FlameFitReconstructor(config)
    model, schema = mediapipe_au_model()
    return lambda reader, frame_count, track, progress: _reconstruct_track(reader, frame_count, track, model, schema,
                                                                           config, progress)


def _reconstruct_track(reader: VideoReader, frame_count: int, track, model, schema, config: ReconstructionConfig,
                       progress: bool) -> FaceParams | None:
    """mediapipe-au's FaceParams of one track (passes 2 and 3: face mesh and fit); None when no face mesh could be
    fitted in any of its frames."""
    crops = crop_matrices(track.boxes, config.crop)
    landmarks, mouth_occluded, hands = extract_landmarks(reader, crops, track.present, config, progress)
    found = ~np.isnan(landmarks[:, 0, 0])
    if not found.any():
        return None
    fitted = fit_landmarks(landmarks, model, config, progress)
    mouth = [model.au_names.index(n) for n in schema.mouth_names]
    expression = [model.au_names.index(n) for n in schema.expression_names]
    return FaceParams(
        schema=schema,
        video=VideoMeta.of(reader, frame_count),
        track_id=track.track_id,
        identity=fitted["identity"],
        face_found=found,
        crop_matrix=crops,
        rotation=fitted["rotation"],
        scale=fitted["scale"],
        translation=fitted["translation"],
        expression=fitted["aus"][:, expression],
        mouth=fitted["aus"][:, mouth],
        vertices=fitted["vertices"],
        landmarks=landmarks,
        fit_error=fitted["fit_error"].astype(np.float32),
        mouth_occluded=mouth_occluded & found,
        hands=np.where(found[:, None, None, None], hands, np.float32(np.nan)),
    )
