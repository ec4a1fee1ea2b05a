"""The editing path: video -> FaceParams -> target codes -> warped frames -> video (same fps, size, audio).

    report = edit_video("in.mp4", "out.mp4", load_edit_config(), emotion="sad")

Frames stream through one at a time; only per-frame parameters are held for the whole video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d, minimum_filter1d
from tqdm import tqdm

from ned_outlier.config import load_config, repo_path
from ned_outlier.errors import UserError
from ned_outlier.io.atomic import ensure_not_input
from ned_outlier.io.image import PhotoWriter, is_image
from ned_outlier.io.video import EncoderConfig, VideoReader, VideoWriter
from ned_outlier.manipulator.facs import FacsConfig, FacsManipulator, TargetCodes
from ned_outlier.reconstruction.au_model import load_au_model
from ned_outlier.reconstruction.edit_basis import EditBasisConfig, EditGeometry
from ned_outlier.reconstruction.mediapipe_au import BACKEND as MEDIAPIPE_BACKEND, codes_to_aus, mediapipe_au_model
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.reconstructor import (ReconstructionConfig, describe_frames, reconstruct,
                                                      reconstruct_faces, true_runs)
from ned_outlier.renderer.mouth import (MouthConfig, MouthSynthesiser, choose_donors, donor_mix, donor_segments,
                                        lip_states, yaw_pitch)
from ned_outlier.renderer.occlusion import (OcclusionConfig, face_width, hand_mask, mouth_hold_weights, present_hands,
                                            vertex_weights)
from ned_outlier.reconstruction.topology import INNER_LIP_PAIRS, OUTER_LIPS, inner_lip_opening
from ned_outlier.renderer.mesh import N_FACE_VERTICES
from ned_outlier.renderer.warp import local_move_scales, warp_face

DEFAULT_EDIT_CONFIG = "configs/edit/default.yaml"  # found by ned_outlier.config.repo_path
LIP_PAIRS = np.array(INNER_LIP_PAIRS)  # (9, 2) upper and lower inner-lip vertex ids
FOLD_LIMITED = 0.95  # a frame counts as fold-limited when part of its change was scaled below this factor
# An edit is written finer than EncoderConfig's default crf 18: at 16 a plain re-encode of the Pexels clip keeps
# 0.974 of the face's sharpness, not 0.943, in the same time (`python benchmarks/encoder.py`; the whole table and the
# other settings: docs/measurements.md, "The encoder"). configs/edit/default.yaml says the same.
EDIT_CRF = 16


@dataclass(frozen=True)
class EditConfig:
    """temporal_sigma: Gaussian smoothing of the code change over time, in frames (>= 0; 0: off). facs.strength,
    the prototypes' intensity, must be >= 0 too (a negative one would edit toward the opposite expression)."""

    facs: FacsConfig = field(default_factory=FacsConfig)
    edit_basis: EditBasisConfig = field(default_factory=EditBasisConfig)
    mouth: MouthConfig = field(default_factory=MouthConfig)
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(crf=EDIT_CRF))
    temporal_sigma: float = 2.0

    def __post_init__(self) -> None:
        if not self.temporal_sigma >= 0:  # NaN too
            raise ValueError(f"temporal_sigma must be >= 0 (0: no smoothing), got {self.temporal_sigma}")
        if not self.facs.strength >= 0:
            raise ValueError(f"facs.strength must be >= 0, got {self.facs.strength}")


@dataclass(frozen=True)
class FaceEdit:
    """What an edit did to one face (track `track_id`): frames with the face edited; of those, frames whose
    displacement was scaled down to avoid folding the mesh, and frames whose mouth came from a donor frame (the
    others kept the warped source mouth: no donor close enough, or retrieval off); face_found (T,): its frames."""

    track_id: int
    edited: int
    fold_limited: int
    mouth_from_donor: int
    face_found: np.ndarray


@dataclass(frozen=True)
class EditReport:
    """What an edit did: frames written, each edited face's FaceEdit (in track order), the output paths; edited,
    fold_limited and mouth_from_donor count face-frames over all faces."""

    frames: int
    faces: tuple[FaceEdit, ...]
    output: Path
    preview: Path | None

    @property
    def edited(self) -> int:
        return sum(face.edited for face in self.faces)

    @property
    def fold_limited(self) -> int:
        return sum(face.fold_limited for face in self.faces)

    @property
    def mouth_from_donor(self) -> int:
        return sum(face.mouth_from_donor for face in self.faces)

    def describe(self) -> str:
        """What the edit did, face by face, in one line: frames edited, scaled down, left without the face."""

        def one(face: FaceEdit) -> str:
            missing = describe_frames(~face.face_found)
            return (f"in {face.edited} of {self.frames} frames"
                    + (f" ({face.fold_limited} with the change scaled down to avoid folding)" if face.fold_limited
                       else "")
                    + (f"; {missing} without {'a' if len(self.faces) == 1 else 'this'} face, left as they were"
                       if missing else ""))

        if len(self.faces) == 1:
            return f"edited the face {one(self.faces[0])}"
        return f"edited {len(self.faces)} faces: " + "; ".join(f"face {face.track_id} {one(face)}"
                                                                for face in self.faces)


def load_edit_config(path: str | Path | None = None, emotions: tuple[str, ...] | list[str] = (),
                     overrides: list[str] | None = None) -> EditConfig:
    """The edit YAML at `path` (None: the project's configs/edit/default.yaml, from a checkout or the package), with
    dotted KEY=VALUE `overrides`; UserError naming the file when it lacks the facs prototype of one of `emotions`
    (canonical names)."""
    path = repo_path(DEFAULT_EDIT_CONFIG) if path is None else path
    config = load_config(path, EditConfig, overrides)
    prototypes = config.facs.emotions
    for emotion in emotions:
        if not prototypes:
            raise UserError(f"{path} has no facs section with emotion prototypes (facs.emotions), so it cannot edit "
                            f"to {emotion!r}: copy the facs section of {DEFAULT_EDIT_CONFIG}")
        if emotion not in prototypes:
            raise UserError(f"{path}: facs.emotions has no prototype of {emotion!r} (it has {', '.join(prototypes)})")
    return config


def source_lip_gaps(params: FaceParams) -> np.ndarray:
    """(T,) each frame's inner-lip opening in model units (pixels over the frame's scale): what an edit may close."""
    return inner_lip_opening(params.landmarks.astype(np.float64)) / params.scale


def code_changes(params: FaceParams, target: TargetCodes, au_names: tuple[str, ...], sigma: float) -> np.ndarray:
    """(T, 20) target minus source AUs, 0 where there is no face, smoothed over time within each run of face frames
    so the edit does not flicker with the per-frame fit's noise."""
    delta = codes_to_aus(target.expression, target.mouth, params.schema, au_names) - codes_to_aus(
        params.expression, params.mouth, params.schema, au_names
    )
    delta = np.nan_to_num(delta.astype(np.float64))
    if sigma > 0:
        for segment in true_runs(params.face_found):
            delta[segment] = gaussian_filter1d(delta[segment], sigma, axis=0, mode="nearest")
    return delta


def smooth_limits(limits: np.ndarray, face_found: np.ndarray, sigma: float) -> np.ndarray:
    """(T, V) per-frame factors in [0, 1] -> the same smoothed over time within each run of face frames, never above
    the frame's own factor: a minimum over +-ceil(2 sigma) frames, then a Gaussian of `sigma` truncated at 2 sigma
    (each output is a weighted mean of minima whose windows all contain the frame itself). So a limit that switches
    on for one frame ramps in over a few frames instead of popping. sigma 0: unchanged."""
    if sigma <= 0:
        return limits
    radius = int(np.ceil(2 * sigma))
    result = limits.copy()
    for segment in true_runs(face_found):
        lowest = minimum_filter1d(limits[segment], 2 * radius + 1, axis=0, mode="nearest")
        result[segment] = gaussian_filter1d(lowest, sigma, axis=0, mode="nearest", truncate=radius / sigma)
    return np.minimum(result, limits)


def target_codes(config: EditConfig, params: FaceParams, emotion: str | None, reference: FaceParams | None,
                 intensity: float, mouth: str) -> TargetCodes:
    """The manipulator's target codes for an emotion name or a reference clip's reconstruction (exactly one)."""
    manipulator = FacsManipulator(config.facs, params.schema)
    if (emotion is None) == (reference is None):
        raise UserError("give exactly one of an emotion or a reference clip")
    if emotion is not None:
        return manipulator.to_emotion(params, emotion, intensity, mouth)
    return manipulator.to_reference(params, reference, intensity, mouth)


class FrameEditor:
    """Renders edited frames of one video for one target: the warp toward the target geometry, then (with mouth
    retrieval) the chosen donor's mouth. `prepare(reader)` collects the donor mouths in one streaming pass."""

    def __init__(self, params: FaceParams, target: TargetCodes, config: EditConfig, neural=None):
        self.params = params
        self.model, _ = mediapipe_au_model()
        self.geometry = EditGeometry(load_au_model(), params.schema.mouth_names, config.edit_basis)
        self.delta = code_changes(params, target, self.model.au_names, config.temporal_sigma)
        self.source_gaps = source_lip_gaps(params)
        self.occlusion = config.occlusion
        self.limits = self._move_limits(config.temporal_sigma)
        self.mouths = MouthSynthesiser(self.model, config.mouth)
        retrieve = config.mouth.enabled and neural is None  # the neural renderer synthesises the mouth itself
        self.donors = None
        if retrieve:
            self.donors = plan_mouths(params, self.delta, self.model, self.geometry, self.source_gaps, config.mouth)
            self.segments = donor_segments(self.donors, params.face_found)
        self.neural = None
        self._previous_index = -2
        if neural is not None:
            from ned_outlier.renderer.neural.inference import NeuralFaceRenderer

            self.neural = NeuralFaceRenderer(neural)
        self.patches: dict = {}
        self.fold_limited = self.from_donor = 0

    def _moves(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame `index`'s source mesh (V, 3) and its full displacement toward the target (V, 3), frame pixels."""
        params = self.params
        source = params.landmarks[index].astype(np.float64)
        return source, self.geometry.displacement(self.delta[index], params.rotation[index], params.scale[index],
                                                  source_gap=self.source_gaps[index])

    def _hands(self, index: int) -> np.ndarray:
        """(K, 21, 2) the hands in front of frame `index`'s face (none when occlusion handling is off)."""
        if not self.occlusion.enabled:
            return np.zeros((0, 21, 2))
        return present_hands(self.params.hands[index])

    def _move_limits(self, sigma: float) -> np.ndarray:
        """(T, 468) per-vertex factors of each frame's displacement: 0 under and next to a hand (`vertex_weights`:
        the face beside a hand does not move against it), or around the lips where a hand over the mouth was
        flagged but not outlined (`mouth_hold_weights`); where the move would still fold the mesh, the moves around
        the fold scaled down (`local_move_scales`); smoothed in time (`smooth_limits`)."""
        params = self.params
        shape = (params.video.height, params.video.width)
        limits = np.ones((params.num_frames, N_FACE_VERTICES), dtype=np.float32)
        for index in np.flatnonzero(params.face_found):
            source, move = self._moves(index)
            hands = self._hands(index)
            if len(hands):
                margin = self.occlusion.in_pixels(face_width(source[:N_FACE_VERTICES])).margin_px
                limits[index] = vertex_weights(source[:N_FACE_VERTICES, :2], hands, shape, margin,
                                               self.occlusion.bone_radius)
            elif self.occlusion.enabled and params.mouth_occluded[index]:  # a hand at the mouth, not outlined
                reach = self.occlusion.unseen_reach * face_width(source[:N_FACE_VERTICES])
                limits[index] = mouth_hold_weights(source[:N_FACE_VERTICES, :2], source[list(OUTER_LIPS), :2], reach)
            move[:N_FACE_VERTICES] *= limits[index, :, None]
            limits[index] *= local_move_scales(source[:, :2], source[:, :2] + move[:, :2])
            pairs = limits[index, LIP_PAIRS].min(axis=1)  # each upper/lower inner-lip pair moves alike: the gap
            limits[index, LIP_PAIRS] = pairs[:, None]   # changes as the edit says, not as the folds around it do
        return smooth_limits(limits, self.params.face_found, sigma)

    def prepare(self, reader: VideoReader, frames: set[int] | None = None, progress: bool = False) -> None:
        """Cut the donor mouths needed by `frames` (default: every frame)."""
        if self.donors is None:
            return
        needed = self.donors
        if frames is not None:  # those frames and the ones their cross-fades reach
            reach = self.mouths.config.crossfade
            near = {near for frame in frames for near in range(frame - reach, frame + reach + 1)}
            needed = self.donors[sorted(near & set(range(len(self.donors))))]
        self.patches = cut_donor_patches(reader, self.params, needed, self.mouths, progress)

    def render(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Frame `index` (H, W, 3) edited; unchanged where the face was not found."""
        params = self.params
        follows, self._previous_index = index == self._previous_index + 1, index
        if self.neural is not None and not follows:
            self.neural.reset()  # its history is of the frames just before; a jump starts a new run
        if index >= params.num_frames or not params.face_found[index]:
            if self.neural is not None:
                self.neural.reset()
            return frame
        source, move = self._moves(index)
        move[:N_FACE_VERTICES] *= self.limits[index, :, None]
        self.fold_limited += bool(self.limits[index].min() < FOLD_LIMITED)
        if self.neural is not None:
            return self._keep_hands(index, frame, self.neural.render(frame, source + move, params.crop_matrix[index]))
        target_points = source[:, :2] + move[:, :2]
        result = warp_face(frame, source[:, :2], target_points)
        if self.donors is not None:
            result = self._paste_mouths(index, result, target_points)
        return self._keep_hands(index, frame, result)

    def _paste_mouths(self, index: int, warped: np.ndarray, target_points: np.ndarray) -> np.ndarray:
        """warped (H, W, 3) with frame `index`'s donor mouth, or (across a donor switch) the cross-fade of the
        mouths `donor_mix` names, pasted at target_points (478, 2)."""
        self.from_donor += bool(self.donors[index] >= 0)
        mix = donor_mix(self.donors, self.segments, self.params.face_found, index, self.mouths.config.crossfade)
        pasted = [(warped if donor < 0 else self.mouths.paste(warped, target_points, self.patches[donor]), weight)
                  for donor, weight in mix]
        if len(pasted) == 1:
            return pasted[0][0]
        return np.rint(sum(weight * image.astype(np.float32) for image, weight in pasted)).astype(np.uint8)

    def _keep_hands(self, index: int, frame: np.ndarray, result: np.ndarray) -> np.ndarray:
        """result (H, W, 3) with the source's pixels over the hands in front of the face, faded at their edge."""
        hands = self._hands(index)
        if not len(hands):
            return result
        pixels = self.occlusion.in_pixels(face_width(self.params.landmarks[index, :N_FACE_VERTICES]))
        mask = hand_mask(hands, frame.shape[:2], pixels.grow_px, pixels.feather_px, self.occlusion.bone_radius)
        keep = mask[:, :, None]
        return np.rint(keep * frame + (1.0 - keep) * result).astype(np.uint8)


def smoothed_codes(source: np.ndarray, target: np.ndarray, face_found: np.ndarray, sigma: float) -> np.ndarray:
    """source + the change target - source (T, C) Gaussian-smoothed over time within each run of face frames
    (sigma in frames; 0: unsmoothed), so the edit does not flicker with the per-frame codes' noise."""
    change = np.nan_to_num(target.astype(np.float64) - source)
    if sigma > 0:
        for segment in true_runs(face_found):
            change[segment] = gaussian_filter1d(change[segment], sigma, axis=0, mode="nearest")
    return source + change


class FlameFrameEditor:
    """Renders edited frames of a FLAME reconstruction (flame-deca, flame-emoca, flame-fit), as NED does: the FLAME
    mesh of the target codes (the source's mesh moved by the codes' change, `FlameReposer`) drawn by a neural
    renderer trained on the actor's FLAME meshes, and blended into the frame."""

    fold_limited = from_donor = 0  # FaceEdit's counts: the FLAME path neither limits folds nor pastes mouths

    def __init__(self, params: FaceParams, target: TargetCodes, config: EditConfig, neural,
                 flame_model: str | None = None, landmark_embedding: str | None = None):
        """neural: the LoadedRenderer (renderer/neural/checkpoint.py), trained on this actor's FLAME meshes;
        flame_model, landmark_embedding: the user's generic_model.pkl and landmark_embedding.npy (None:
        FLAME_MODEL_PATH, FLAME_LANDMARK_EMBEDDING_PATH), the FLAME of the codes and the renderer's topology."""
        from ned_outlier.reconstruction.flame.landmarks import load_landmark_embedding
        from ned_outlier.reconstruction.flame.model_file import load_flame_model
        from ned_outlier.reconstruction.flame_repose import FlameReposer
        from ned_outlier.renderer.neural.conditioning import flame_topology
        from ned_outlier.renderer.neural.inference import NeuralFaceRenderer

        self.params = params
        model = load_flame_model(flame_model)  # one read for the codes' FLAME and the renderer's topology
        self.reposer = FlameReposer(model)
        self.reposer.require_matching(params)
        found = params.face_found
        self.expression = smoothed_codes(params.expression, target.expression, found, config.temporal_sigma)
        self.mouth = smoothed_codes(params.mouth, target.mouth, found, config.temporal_sigma)
        topology = flame_topology(model, load_landmark_embedding(landmark_embedding))
        self.neural = NeuralFaceRenderer(neural, topology=topology)
        self._previous_index = -2

    def prepare(self, reader: VideoReader, frames: set[int] | None = None, progress: bool = False) -> None:
        """Nothing to collect first (FrameEditor's interface)."""

    def target_mesh(self, index: int) -> np.ndarray:
        """(V, 3) frame pixels: frame `index`'s FLAME mesh with the target codes."""
        frames = np.array([index])
        move = self.reposer.displacement(self.params, frames, self.expression[frames], self.mouth[frames])
        return self.params.vertices[index] + move[0]

    def render(self, index: int, frame: np.ndarray) -> np.ndarray:
        """Frame `index` (H, W, 3) edited; unchanged where the face was not found."""
        follows, self._previous_index = index == self._previous_index + 1, index
        if index >= self.params.num_frames or not self.params.face_found[index]:
            self.neural.reset()
            return frame
        if not follows:
            self.neural.reset()  # its history is of the frames just before; a jump starts a new run
        return self.neural.render(frame, self.target_mesh(index), self.params.crop_matrix[index])


def edit_video(
    video: str | Path,
    out: str | Path,
    config: EditConfig,
    *,
    emotion: str | None = None,
    reference: str | Path | FaceParams | None = None,
    intensity: float = 1.0,
    mouth: str = "keep",
    face: str | int = "largest",
    params: FaceParams | Sequence[FaceParams] | None = None,
    reconstruction: ReconstructionConfig = ReconstructionConfig(),
    preview: str | Path | None = None,
    progress: bool = True,
    manipulator=None,
    neural_renderer=None,
) -> EditReport:
    """Edit the face in `video` (the largest, a track id, or "all" of them: `face`) toward `emotion` (or `reference`'s
    style: the clip, or its reconstruction) and write `out` (and a side-by-side original | edited `preview`); a photo
    is a one-frame video, and an image suffix of `out` writes a photo. `params` reuses saved reconstructions of
    `video` instead (one face or several; UserError when one is of another video: `FaceParams.require_source`).
    Each face is edited with its own codes (and its own neutral estimate, for NED), one after the other on each
    frame. `manipulator`: an object with NedManipulator's target_codes (None: the `facs` prototypes of `config`).
    `neural_renderer`: a LoadedRenderer (renderer/neural/checkpoint.py) trained on this actor (None: the `warp`
    renderer); it draws one face."""
    inputs = [video] + ([reference] if reference is not None and not isinstance(reference, FaceParams) else [])
    for path in [out] + ([preview] if preview is not None else []):
        ensure_not_input(path, *inputs)
    reader = VideoReader(video)
    info = reader.info
    if params is None:
        faces = reconstruct_faces(video, reconstruction, face=face, progress=progress)
    else:
        faces = [params] if isinstance(params, FaceParams) else list(params)
        for one in faces:
            one.require_source(reader)
    for one in faces:
        require_parts_for(one.schema.backend, manipulator, neural_renderer)
    if neural_renderer is not None and len(faces) > 1:
        raise UserError(f"a neural renderer draws the one actor it was trained on, not {len(faces)} faces: choose one "
                        "face (--face)")
    reference_params = reference
    if reference is not None and not isinstance(reference, FaceParams):
        reference_params = reconstruct(reference, reconstruction, progress=progress)
    editors = []
    for one in faces:
        if manipulator is None:
            target = target_codes(config, one, emotion, reference_params, intensity, mouth)
        else:
            target = manipulator.target_codes(one, emotion, reference_params, intensity, mouth)
        if neural_renderer is not None:
            one.schema.require_same(neural_renderer.schema, "the neural renderer")
        if one.schema.backend == MEDIAPIPE_BACKEND:
            editors.append(FrameEditor(one, target, config, neural_renderer))
        else:
            editors.append(FlameFrameEditor(one, target, config, neural_renderer, reconstruction.flame.flame_model,
                                            reconstruction.flame_fit.landmark_embedding))
        editors[-1].prepare(reader, progress=progress)
    frames = 0
    times = reader.frame_times()  # a variable-frame-rate source keeps its timestamps (and its audio in sync)
    with (open_output(out, info, video, config.encoder, times) as writer,
          _PreviewWriter(preview, info, video, config.encoder, times) as side_by_side):
        description = "edit" if len(editors) == 1 else f"edit {len(editors)} faces"
        for index, frame in enumerate(tqdm(reader, total=faces[0].num_frames, desc=description, disable=not progress)):
            result = frame
            for editor in editors:
                result = editor.render(index, result)
            writer.write(result)
            side_by_side.write(frame, result)
            frames += 1
    edits = tuple(FaceEdit(one.track_id, int(one.face_found[:frames].sum()), editor.fold_limited, editor.from_donor,
                           one.face_found[:frames]) for one, editor in zip(faces, editors))
    return EditReport(frames, edits, Path(out), Path(preview) if preview else None)


def require_parts_for(backend: str, manipulator=None, neural_renderer=None) -> None:
    """UserError unless the edit's parts take codes of reconstruction `backend`: a NED manipulator or a neural
    renderer (objects with `schema`) trained on that backend's codes; the facs manipulator (manipulator None) and the
    warp renderer (neural_renderer None) on mediapipe-au's only, being built on its FACS action units and MediaPipe
    mesh. Checked from the backend alone, so before a reconstruction, and again on its schema by edit_video."""
    for part, name in ((manipulator, "NED manipulator"), (neural_renderer, "neural renderer")):
        if part is not None and part.schema.backend != backend:
            raise UserError(f"the {name} was trained on {part.schema.backend} codes, these come from {backend}: "
                            f"reconstruct with --backend {part.schema.backend} (or use a {name} trained on {backend} "
                            "codes)")
    facs, warp = manipulator is None, neural_renderer is None
    if backend == MEDIAPIPE_BACKEND or not (facs or warp):
        return
    part = "the facs manipulator" if facs else "the warp renderer"
    raise UserError(f"{part} works on {MEDIAPIPE_BACKEND} reconstructions, these are {backend}: FLAME codes "
                    "are edited by a NED manipulator trained on them (--manipulator ned --checkpoint ...) and drawn "
                    "by a neural renderer trained on the actor's FLAME meshes (--renderer neural --checkpoint ...; "
                    "docs/reconstruction.md)")


def plan_mouths(params: FaceParams, delta: np.ndarray, model, geometry: EditGeometry, source_gaps: np.ndarray,
                config: MouthConfig) -> np.ndarray:
    """Donor frame per frame (T,), -1 for none: the source frames' own mouths against the target mouth states.

    A frame's own state is its codes under the fit's `model`; its target adds the lips' part of the displacement
    the edit moves the mesh by (`geometry.model_displacement` of the code change `delta` (T, 20), with the frame's
    lip gap `source_gaps` (T,)), so a grin edited to sad looks for a donor with closed lips.

    Frames with a hand over the mouth are neither donors nor given a donor's mouth; nor are frames fitted badly
    (fit error above `max_fit_error_ratio` times the video's median), whose mesh may not follow the lips.
    """
    source_aus = np.nan_to_num(codes_to_aus(params.expression, params.mouth, params.schema, model.au_names))
    pose = np.nan_to_num(yaw_pitch(params))
    clear = params.face_found & ~params.mouth_occluded
    well_fitted = np.nan_to_num(params.fit_error, nan=np.inf) <= config.max_fit_error_ratio * np.nanmedian(
        params.fit_error
    )
    own_states = lip_states(model.basis, source_aus)
    lips = list(OUTER_LIPS)
    moves = np.stack([geometry.model_displacement(d, g)[lips] for d, g in zip(delta, np.nan_to_num(source_gaps))])
    target_states = own_states + moves.reshape(len(delta), -1) / np.sqrt(len(lips))
    own_distance = np.linalg.norm(target_states - own_states, axis=1)
    scale = np.nan_to_num(params.scale, nan=1.0)
    donors, _ = choose_donors(target_states, own_states, pose, pose, clear, clear & well_fitted, config, own_distance,
                              (scale, scale))
    return donors


def cut_donor_patches(reader: VideoReader, params: FaceParams, donors: np.ndarray, mouths: MouthSynthesiser,
                      progress: bool) -> dict:
    """One streaming pass keeping only the mouth regions of the frames chosen as donors: {frame: MouthPatch}."""
    wanted = set(donors[donors >= 0].tolist())
    patches = {}
    for index, frame in enumerate(tqdm(reader, total=params.num_frames, desc="mouth donors", disable=not progress)):
        if index in wanted:
            patches[index] = mouths.cut(frame, params.landmarks[index, :, :2].astype(np.float64))
    return patches


def open_output(path: str | Path, info, audio_from: str | Path, encoder: EncoderConfig, times=None,
                width: int | None = None):
    """The writer of an edit's output `path`: a PhotoWriter for an image suffix (a photo's edit), else a VideoWriter
    at the source's rate (`info`) with `encoder`'s settings, `audio_from`'s audio and the source's frame `times`;
    `width`: another frame width than the source's (the side-by-side preview)."""
    if is_image(Path(path)):
        return PhotoWriter(path)
    return VideoWriter(path, info.fps, width or info.width, info.height, audio_from=audio_from, encoder=encoder,
                       times=times)


class _PreviewWriter:
    """Original | edited, side by side (with the source's audio, for a video); a no-op when `path` is None."""

    def __init__(self, path, info, audio_from, encoder: EncoderConfig, times=None):
        self._writer = None if path is None else open_output(path, info, audio_from, encoder, times, 2 * info.width)

    def write(self, original: np.ndarray, edited: np.ndarray) -> None:
        if self._writer is not None:
            self._writer.write(np.concatenate([original, edited], axis=1))

    def __enter__(self):
        if self._writer is not None:
            self._writer.__enter__()
        return self

    def __exit__(self, *exc):
        if self._writer is not None:
            self._writer.__exit__(*exc)
