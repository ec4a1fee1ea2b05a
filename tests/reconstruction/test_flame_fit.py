"""The flame-fit backend: the MediaPipe -> iBUG table, the rigid start and the objective on hand-computed cases, the
warm start, the fit recovering FLAME's own projected landmarks (a FLAME-format file the test makes, with few active
blendshapes and the jaw driving the lower half of the head, so the codes are identifiable from 68 points), and a
whole reconstruction of a short clip."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import ned_outlier.reconstruction.flame_fit as flame_fit
import ned_outlier.reconstruction.reconstructor as reconstructor
from ned_outlier.assets import asset_path
from ned_outlier.config import load_config
from ned_outlier.errors import UserError
from ned_outlier.reconstruction.flame.landmarks import FlameLandmarks, load_landmark_embedding
from ned_outlier.reconstruction.flame.layer import FlameLayer
from ned_outlier.reconstruction.flame.model_file import load_flame_model
from ned_outlier.reconstruction.flame_deca import FlameDecaConfig, flame_schema
from ned_outlier.reconstruction.flame_fit import (MEDIAPIPE_TO_IBUG68, FlameFitConfig, FlameFitReconstructor,
                                                  FlameFitter, frame_objective, normalise, project, rigid_alignment,
                                                  warm_start)
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct

from factories import face_clip
from flame_fixture import flame_arrays, landmark_embedding, write_flame_model, write_landmark_embedding

REPO = Path(__file__).resolve().parents[2]
FLIP = np.diag([1.0, -1.0, -1.0])
# iBUG 68 (0-based): each point's mirror image across the face's midline
MIRROR = [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31,
          45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, 54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
          64, 63, 62, 61, 60, 67, 66, 65]


def test_the_table_picks_68_distinct_face_mesh_vertices_symmetric_about_the_midline():
    table = MEDIAPIPE_TO_IBUG68
    assert table.shape == (68,) and len(set(table.tolist())) == 68 and table.min() >= 0 and table.max() < 468
    canonical = torch.load(asset_path("canonical_face")).numpy()  # (468, 3) cm, x to the image's right, y up
    points = canonical[table]
    np.testing.assert_allclose(points[MIRROR] * [-1, 1, 1], points, atol=1e-3)  # each point's partner mirrored
    assert (np.diff(points[:17, 0]) > 0).all()  # the contour runs from the image's left (the subject's right)
    assert points[8, 1] == points[:, 1].min()  # iBUG 9 (index 8) is the chin's lowest point
    assert points[36, 0] < points[39, 0] < points[42, 0] < points[45, 0]  # eye corners: right eye, then left eye
    assert points[19, 1] > points[37, 1] > points[30, 1] > points[51, 1] > points[57, 1]  # brow, eye, nose, lips


QUARTER_TURN_Y = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # R (x, y, z) = (z, y, -x)


def test_the_rigid_alignment_recovers_a_known_orthographic_similarity():
    model = np.random.default_rng(0).normal(size=(1, 51, 3))
    # frame = s FLIP R p + t: a quarter turn about y, s = 2, t = (3, 4): (x, y, z) -> (2 z + 3, -2 y + 4)
    image = np.stack([2 * model[..., 2] + 3, -2 * model[..., 1] + 4], axis=-1)
    rotation, scale, shift = rigid_alignment(model, image)
    np.testing.assert_allclose(Rotation.from_rotvec(rotation[0]).as_matrix(), QUARTER_TURN_Y, atol=1e-9)
    np.testing.assert_allclose(scale, [2.0]) and np.testing.assert_allclose(shift, [[3.0, 4.0]], atol=1e-9)
    again = project(torch.tensor(model), torch.tensor(rotation), torch.tensor(np.log(scale)), torch.tensor(shift))
    np.testing.assert_allclose(again.numpy(), image, atol=1e-9)


def test_normalise_centres_and_scales_by_the_rms_radius():
    points = np.array([[[0.0, 0.0], [6.0, 0.0], [0.0, 8.0], [6.0, 8.0]]])  # centre (3, 4), every point 5 away
    target, centre, size = normalise(points)
    np.testing.assert_allclose(centre, [[3.0, 4.0]]) and np.testing.assert_allclose(size, [5.0])
    np.testing.assert_allclose(target[0, 0], [-0.6, -0.8])


def codes_of(count, expression=0.0, jaw=0.0, rotation=0.0):
    return {"expression": torch.full((count, 50), float(expression)), "jaw": torch.full((count, 1), float(jaw)),
            "rotation": torch.full((count, 3), float(rotation)), "log_scale": torch.zeros(count),
            "shift": torch.zeros(count, 2)}


def test_the_objective_on_hand_computed_cases():
    config = FlameFitConfig(expression_weight=0.5, jaw_weight=0.25, smooth_weight=2.0)
    target = torch.zeros(2, 68, 2)
    predicted = target.clone()
    predicted[..., 0] += 0.1  # every point 0.1 off: mean squared distance 0.01
    codes = codes_of(2, expression=0.2, jaw=0.4)
    codes["expression"][1] = 0.3
    # each frame: 0.01 + 0.5 * 50 * e^2 + 0.25 * 0.4^2; frame 1 also 2.0 * 50 * (0.3 - 0.2)^2 of smoothness
    expected = [0.01 + 0.5 * 50 * 0.04 + 0.04, 0.01 + 0.5 * 50 * 0.09 + 0.04 + 2.0 * 50 * 0.01]
    np.testing.assert_allclose(frame_objective(predicted, target, codes, None, config).numpy(), expected, rtol=1e-5)
    # the batch before: its last frame is frame 0's predecessor (jaw 0.4 - 0.1, rotation 0 - 0.5 on 3 axes)
    previous = codes_of(3, expression=0.2, jaw=0.1, rotation=0.5)
    first = expected[0] + 2.0 * (0.3 ** 2 + 3 * 0.5 ** 2)
    np.testing.assert_allclose(frame_objective(predicted, target, codes, previous, config).numpy(),
                               [first, expected[1]], rtol=1e-5)
    np.testing.assert_allclose(frame_objective(predicted, target, codes, previous, config, smooth=False).numpy(),
                               [0.01 + 0.5 * 50 * 0.04 + 0.04, 0.01 + 0.5 * 50 * 0.09 + 0.04], rtol=1e-5)


def test_a_batch_starts_from_the_last_frame_of_the_batch_before():
    assert all((value == 0).all() for value in warm_start(None, 3, torch.device("cpu")).values())
    previous = codes_of(4, expression=0.1, jaw=0.2)
    previous["expression"][-1] = 0.7
    start = warm_start(previous, 3, torch.device("cpu"))
    assert torch.equal(start["expression"], torch.full((3, 50), 0.7)) and torch.equal(start["jaw"],
                                                                                    torch.full((3, 1), 0.2))


def identifiable_flame(folder: Path, num_vertices: int = 300, num_faces: int = 500) -> tuple[Path, Path]:
    """A FLAME-format file with 5 identity and 10 expression blendshapes (the rest zero), every vertex skinned fully
    to the root or (below y = -0.03) to the jaw; a landmark embedding whose contour is the same in every yaw bin
    (the generated file's random bins would make the contour jump as the yaw changes)."""
    arrays = flame_arrays(num_vertices, num_faces)
    rng = np.random.default_rng(5)
    arrays["shapedirs"][:] = 0.0
    arrays["shapedirs"][:, :, :5] = rng.normal(0, 5e-3, (num_vertices, 3, 5))
    arrays["shapedirs"][:, :, 300:310] = rng.normal(0, 5e-3, (num_vertices, 3, 10))
    lower = arrays["v_template"][:, 1] < -0.03
    arrays["weights"][:] = 0.0
    arrays["weights"][lower, 2] = 1.0
    arrays["weights"][~lower, 0] = 1.0
    embedding = landmark_embedding(num_faces)
    for key in ("dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords"):
        embedding[key] = embedding[key][:1].repeat(79, *([1] * (embedding[key].ndim - 1)))
    return (write_flame_model(folder / "generic_model.pkl", arrays),
            write_landmark_embedding(folder / "landmark_embedding.npy", embedding))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return identifiable_flame(tmp_path_factory.mktemp("flame_fit"))


def fitter_of(files, **settings) -> FlameFitter:
    model = load_flame_model(files[0])
    return FlameFitter(FlameLayer(model), FlameLandmarks(load_landmark_embedding(files[1]), model.f),
                       FlameFitConfig(**settings))


FRAMES = 24
SCALE = 1000.0  # frame pixels per model unit: the head (0.2 units) about 200 px


def truth(fitter: FlameFitter) -> dict:
    """Known codes of FRAMES frames (the jaw opening 0.05 to 0.25 rad, the head turning and nodding, moving right),
    their 68 projected landmarks (FRAMES, 68, 2) and mesh (FRAMES, V, 3) in frame pixels, by the FaceParams
    formula frame = s FLIP R model + t written out here."""
    rng = np.random.default_rng(0)
    time = np.arange(FRAMES)
    shape = torch.zeros(1, 100)
    shape[0, :5] = torch.tensor(rng.normal(0, 1, 5), dtype=torch.float32)
    expression = torch.zeros(FRAMES, 50)
    expression[:, :10] = torch.tensor(np.cumsum(rng.normal(0, 0.2, (FRAMES, 10)), 0), dtype=torch.float32)
    jaw = torch.tensor(0.15 + 0.1 * np.sin(time / 4)[:, None], dtype=torch.float32)
    rotation = np.stack([0.1 * np.sin(time / 7), 0.3 * np.sin(time / 9), np.full(FRAMES, 0.05)], 1)
    shift = np.stack([320.0 + time, np.full(FRAMES, 180.0)], 1)
    with torch.no_grad():
        points = fitter.model_points(shape, expression, jaw, torch.tensor(rotation, dtype=torch.float32)).numpy()
        model = fitter.mesh(shape, expression, jaw).numpy()
    matrices = Rotation.from_rotvec(rotation).as_matrix()
    offset = np.pad(shift, ((0, 0), (0, 1)))[:, None]  # translation z 0
    in_frame = lambda p: SCALE * np.einsum("ij,njk,nvk->nvi", FLIP, matrices, p) + offset  # noqa: E731
    return {"shape": shape, "expression": expression, "jaw": jaw.numpy(), "rotation": matrices,
            "landmarks": in_frame(points)[..., :2], "vertices": in_frame(model)}


def fit(fitter: FlameFitter, observed: np.ndarray):
    target, centre, size = normalise(observed)
    shape, codes = fitter.fit_track(target)
    reconstructor_ = FlameFitReconstructor.__new__(FlameFitReconstructor)  # its placement, without the files
    reconstructor_.fitter = fitter
    return codes, reconstructor_.place(shape, codes, centre, size), float(size.mean())


def test_the_fit_recovers_flame_s_own_projected_landmarks(files):
    fitter = fitter_of(files, batch_size=10)  # 24 frames: batches of 10, 10 and 4, each warm-started
    known = truth(fitter)
    codes, (rotation, scale, translation, vertices, landmarks), size = fit(fitter, known["landmarks"])
    landmark_rms = np.sqrt(((landmarks - known["landmarks"]) ** 2).sum(-1).mean()) / size
    mesh_rms = np.sqrt(((vertices - known["vertices"]) ** 2).sum(-1).mean()) / size
    assert landmark_rms < 5e-3, landmark_rms
    assert mesh_rms < 1e-2, mesh_rms  # the whole mesh, depth too: the camera and FLIP as FaceParams has them
    np.testing.assert_allclose(codes["jaw"].numpy(), known["jaw"], atol=0.01)  # the opening's sign and size
    np.testing.assert_allclose(rotation, known["rotation"], atol=0.01)
    np.testing.assert_allclose(scale, SCALE, rtol=0.01)
    np.testing.assert_allclose(translation[:, 2], 0.0)


def test_the_track_s_batches_are_warm_started_in_order(files, monkeypatch):
    fitter = fitter_of(files, batch_size=10, shape_frames=4)
    known = truth(fitter)
    starts = []
    original = FlameFitter.start

    def recording(self, shape, target, previous):
        starts.append(None if previous is None else {k: v.clone() for k, v in previous.items()})
        return original(self, shape, target, previous)

    monkeypatch.setattr(FlameFitter, "start", recording)
    codes, *_ = fit(fitter, known["landmarks"])
    # the shape fit and the first batch start cold, each later batch from the batch before's codes
    assert starts[0] is None and starts[1] is None and len(starts) == 4
    torch.testing.assert_close(starts[2]["expression"], codes["expression"][0:10])
    torch.testing.assert_close(starts[3]["jaw"], codes["jaw"][10:20])


def test_strong_regularisation_pulls_the_expression_to_zero(files):
    fitter = fitter_of(files, expression_weight=10.0)
    known = truth(fitter)
    codes, *_ = fit(fitter, known["landmarks"])
    assert codes["expression"].abs().max() < 0.05 * known["expression"].abs().max()


def test_the_settings_are_checked():
    with pytest.raises(ValueError, match="flame_fit.batch_size must be >= 1"):
        FlameFitConfig(batch_size=0)
    with pytest.raises(ValueError, match="flame_fit.jaw_weight must be >= 0"):
        FlameFitConfig(jaw_weight=math.nan)


def test_the_shipped_config_selects_flame_fit():
    config = load_config(REPO / "configs/reconstruct/flame_fit.yaml", ReconstructionConfig)
    assert config.backend == "flame-fit" and config.flame_fit == FlameFitConfig()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return face_clip(tmp_path_factory.mktemp("flame_fit_clip") / "face.mp4", 16, without_face=range(12, 16))


def fit_config(files, **settings) -> ReconstructionConfig:
    return ReconstructionConfig(backend="flame-fit", flame=FlameDecaConfig(flame_model=str(files[0])),
                                flame_fit=FlameFitConfig(landmark_embedding=str(files[1]), **settings))


@pytest.mark.slow
def test_flame_fit_reconstructs_a_clip(files, clip, tmp_path):
    params = reconstruct(clip, fit_config(files, batch_size=8), progress=False)
    assert params.schema == flame_schema("flame-fit", 300)
    found = params.face_found
    assert found[:12].all() and not found[12:].any()
    assert params.expression.shape == (16, 50) and params.mouth.shape == (16, 1)
    for name in ("rotation", "scale", "translation", "expression", "mouth", "vertices", "fit_error"):
        values = getattr(params, name)
        assert np.isfinite(values[found]).all() and np.isnan(values[~found]).all(), name
    # the mesh sits on the astronaut's face (box x 82-174, y 61-176)
    centre = params.vertices[found][..., :2].mean(axis=(0, 1))
    assert 82 < centre[0] < 174 and 61 < centre[1] < 176, centre
    assert (params.fit_error[found] < 1.0).all()  # FLAME's landmarks near the mesh's, a face-width unit
    again = FaceParams.load(params.save(tmp_path / "params.npz"))
    assert again.schema == params.schema


@pytest.mark.parametrize("which, fragments", [
    ("flame", ("no FLAME model given", "FLAME_MODEL_PATH", "--flame-model", "https://flame.is.tue.mpg.de")),
    ("embedding", ("no FLAME landmark embedding given", "--landmark-embedding", "flame_fit.landmark_embedding",
                   "FLAME_LANDMARK_EMBEDDING_PATH", "https://deca.is.tue.mpg.de")),
    ("missing", ("missing/landmark_embedding.npy", "not found")),
])
def test_a_missing_file_is_named_before_any_frame_is_read(files, clip, monkeypatch, which, fragments):
    monkeypatch.delenv("FLAME_MODEL_PATH", raising=False)
    monkeypatch.delenv("FLAME_LANDMARK_EMBEDDING_PATH", raising=False)
    monkeypatch.setattr(reconstructor, "track_faces", lambda *a, **k: pytest.fail("frames were read"))
    config = fit_config(files)
    if which == "flame":
        config = ReconstructionConfig(backend="flame-fit", flame_fit=config.flame_fit)
    else:
        config = ReconstructionConfig(backend="flame-fit", flame=config.flame, flame_fit=FlameFitConfig(
            landmark_embedding="missing/landmark_embedding.npy" if which == "missing" else None))
    with pytest.raises(UserError) as raised:
        reconstruct(clip, config, progress=False)
    message = str(raised.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_the_reconstructor_uses_the_shared_flame_setting(files, monkeypatch):
    loaded = []
    monkeypatch.setattr(flame_fit, "load_flame_model", lambda path: loaded.append(path) or load_flame_model(path))
    FlameFitReconstructor(fit_config(files))
    assert loaded == [str(files[0])]
