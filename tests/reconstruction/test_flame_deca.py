"""The flame-deca / flame-emoca backends: DECA's projection into frame pixels on hand-computed cases, and whole
reconstructions with a FLAME-format file and DECA / EMOCA checkpoints the tests make (real key names; the last
layer's bias fixes the codes, so what each FaceParams field must hold is known by hand)."""

import math

import numpy as np
import pytest
import torch

import ned_outlier.reconstruction.reconstructor as reconstructor
from ned_outlier.errors import UserError
from ned_outlier.reconstruction.flame.model_file import load_flame_model
from ned_outlier.reconstruction.flame_deca import FlameDecaConfig, flame_schema, place_in_frame
from ned_outlier.reconstruction.params import FaceParams, VideoMeta
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig, reconstruct

from deca_fixture import DECA_OUTPUTS, EMOCA_OUTPUTS, fixed_codes, write_deca_checkpoint, write_emoca_checkpoint
from factories import face_clip
from flame_fixture import write_flame_model

QUARTER_TURN_Y = [0.0, math.pi / 2, 0.0]  # R (x, y, z) = (z, y, -x)
CROP = np.array([[2.0, 0.0, -100.0], [0.0, 2.0, -50.0]])  # frame -> crop: 2 crop pixels per frame pixel


@pytest.mark.parametrize("root, expected", [
    # R v = (0.5, 2, -1); crop NDC 0.5 * (0.5 + 0.2, 2 - 0.4) = (0.35, 0.8); crop pixels (1.35 * 111.5,
    # (1 - 0.8) * 111.5) = (150.525, 22.3); frame ((150.525 + 100) / 2, (22.3 + 50) / 2); depth -s' * z with
    # s' = 111.5 * 0.5 / 2 = 27.875 pixels per model unit.
    ((0.0, 0.0, 0.0), (125.2625, 36.15, 27.875)),
    # about the root (1, 0, 0): R (v - j) + j = (0.5, 2, 0) + (1, 0, 0) = (1.5, 2, 0); NDC (0.85, 0.8).
    ((1.0, 0.0, 0.0), (153.1375, 36.15, 0.0)),
])
def test_a_vertex_lands_where_deca_s_camera_and_crop_put_it(root, expected):
    model = np.array([[[1.0, 2.0, 0.5]]])
    rotation, scale, translation, vertices = place_in_frame(model, np.array([root]), np.array([QUARTER_TURN_Y]),
                                                            np.array([[0.5, 0.2, -0.4]]), CROP[None])
    np.testing.assert_allclose(vertices[0, 0], expected, atol=1e-4)
    np.testing.assert_allclose(rotation[0], [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-12)
    assert scale[0] == pytest.approx(27.875)
    # the FaceParams contract: frame pixels = scale * FLIP @ R @ model + translation
    flip = np.diag([1.0, -1.0, -1.0])
    np.testing.assert_allclose(scale[0] * flip @ rotation[0] @ model[0, 0] + translation[0], expected, atol=1e-4)


def test_the_schema_is_fifty_expression_codes_and_the_jaw_opening():
    schema = flame_schema("flame-deca", 5023)
    assert len(schema.expression_names) == 50 and schema.mouth_names == ("jaw_open",)
    assert schema.expression_names[0] == "exp_00" and schema.expression_names[-1] == "exp_49"
    assert schema != flame_schema("flame-emoca", 5023)  # a checkpoint of one refuses the other's codes


SHAPE = np.linspace(-1, 1, 100)
EXPRESSION = np.linspace(0.5, -0.5, 50)
POSE = np.array([0.0, 0.3, 0.0, 0.25, 0.01, -0.02])  # global: 0.3 rad about y; jaw opening 0.25
CAM = np.array([8.0, 0.01, -0.02])


def deca_code() -> np.ndarray:
    return np.concatenate([SHAPE, np.zeros(50), EXPRESSION, POSE, CAM, np.zeros(27)])


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flame_deca")
    return {
        "video": face_clip(folder / "face.mp4", 20, without_face=range(15, 20)),
        "flame": write_flame_model(folder / "generic_model.pkl"),
        "deca": write_deca_checkpoint(folder / "deca_model.tar", fixed_codes(DECA_OUTPUTS, deca_code())),
        "emoca": write_emoca_checkpoint(folder / "emoca.ckpt", fixed_codes(DECA_OUTPUTS, deca_code()),
                                        fixed_codes(EMOCA_OUTPUTS, -EXPRESSION, seed=1)),
    }


def flame_config(assets, backend="flame-deca", **files) -> ReconstructionConfig:
    chosen = {"deca_model": str(assets["deca"]), "flame_model": str(assets["flame"]), **files}
    return ReconstructionConfig(backend=backend, flame=FlameDecaConfig(**chosen))


@pytest.mark.slow
def test_flame_deca_fills_face_params_with_deca_s_codes(assets, tmp_path):
    params = reconstruct(assets["video"], flame_config(assets), progress=False)
    assert params.schema == flame_schema("flame-deca", params.identity.shape[0])
    found = params.face_found
    assert found.tolist() == [True] * 15 + [False] * 5  # the track ends where the face goes (DECA regresses any crop)
    np.testing.assert_allclose(params.expression[found], np.tile(EXPRESSION, (15, 1)), atol=1e-5)
    np.testing.assert_allclose(params.mouth[found, 0], 0.25, atol=1e-6)
    assert np.isnan(params.expression[~found]).all() and np.isnan(params.vertices[~found]).all()
    cos, sin = math.cos(0.3), math.sin(0.3)
    np.testing.assert_allclose(params.rotation[found], np.tile([[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]], (15, 1, 1)),
                               atol=1e-6)
    # the crop is DECA's 224 px square about the face, the camera scale s = 8 spans 111.5 * 8 crop pixels a unit
    factor = np.hypot(*params.crop_matrix[0, 0, :2])
    assert params.scale[0] == pytest.approx(111.5 * 8 / factor, rel=1e-5)
    # the neutral mesh: FLAME's template plus the shape blend of DECA's shape code (no expression, no pose)
    flame = load_flame_model(assets["flame"])
    np.testing.assert_allclose(params.identity, flame.v_template + flame.shapedirs[:, :, :100] @ SHAPE, atol=1e-4)
    # the mesh sits on the face: its centre inside the astronaut's face box (x 82-174, y 61-176)
    centre = np.nanmean(params.vertices[found][..., :2], axis=(0, 1))
    assert 60 < centre[0] < 200 and 40 < centre[1] < 200, centre
    again = FaceParams.load(params.save(tmp_path / "params.npz"))
    assert again.schema == params.schema
    np.testing.assert_array_equal(again.vertices, params.vertices)


@pytest.mark.slow
def test_flame_emoca_takes_emoca_s_expression_and_deca_s_jaw(assets):
    params = reconstruct(assets["video"], flame_config(assets, "flame-emoca", emoca_model=str(assets["emoca"])),
                         progress=False)
    assert params.schema.backend == "flame-emoca"
    np.testing.assert_allclose(params.expression[params.face_found], np.tile(-EXPRESSION, (15, 1)), atol=1e-5)
    np.testing.assert_allclose(params.mouth[params.face_found, 0], 0.25, atol=1e-6)


@pytest.mark.parametrize("files, fragments", [
    ({"deca_model": None}, ("no DECA model given", "DECA_MODEL_PATH", "https://deca.is.tue.mpg.de")),
    ({"flame_model": None}, ("FLAME_MODEL_PATH", "https://flame.is.tue.mpg.de")),
    ({"deca_model": "missing/deca_model.tar"}, ("missing/deca_model.tar", "not found")),
])
def test_a_missing_asset_is_named_before_any_frame_is_read(assets, monkeypatch, files, fragments):
    monkeypatch.delenv("DECA_MODEL_PATH", raising=False)
    monkeypatch.delenv("FLAME_MODEL_PATH", raising=False)
    monkeypatch.setattr(reconstructor, "track_faces", lambda *a, **k: pytest.fail("frames were read"))
    with pytest.raises(UserError) as raised:
        reconstruct(assets["video"], flame_config(assets, **files), progress=False)
    message = str(raised.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be one of mediapipe-au, flame-deca, flame-emoca"):
        ReconstructionConfig(backend="deca")


@pytest.fixture(scope="module")
def flame_model(tmp_path_factory):
    return load_flame_model(write_flame_model(tmp_path_factory.mktemp("flame_model") / "generic_model.pkl"))


def reconstruction_of(reposer, backend: str, codes: list[tuple[np.ndarray, float]], global_pose, cam,
                      crop) -> FaceParams:
    """What `backend` makes of frames with these (expression (50,), jaw opening) codes, a head turned by
    `global_pose` and camera `cam` (DECA's s, tx, ty in the crop `crop`): FLAME turned about its root joint and
    placed by DECA's camera (flame-deca), or turned about the model's origin, frame = s * FLIP @ R @ model + t
    (flame-fit, with DECA's s and t)."""
    count = len(codes)
    expression = np.stack([c[0] for c in codes])
    pose = np.zeros((count, 6))
    pose[:, :3], pose[:, 3] = global_pose, [c[1] for c in codes]
    local_pose = pose * [0, 0, 0, 1, 1, 1]  # FLAME without the global turn: the placement applies it
    out = reposer.flame(*[torch.as_tensor(a, dtype=torch.float32) for a in (np.zeros((count, 100)), expression,
                                                                             local_pose)])
    model = out.vertices.double().numpy()
    rotation, scale, translation, vertices = place_in_frame(model, out.joints[:, 0].double().numpy(), pose[:, :3],
                                                            np.tile(cam, (count, 1)), np.tile(crop, (count, 1, 1)))
    if backend == "flame-fit":
        flip = np.diag([1.0, -1.0, -1.0])
        translation = np.tile([128.0, 120.0, 0.0], (count, 1))
        vertices = (scale[:, None, None] * np.einsum("ij,njk,nvk->nvi", flip, rotation, model)
                    + translation[:, None]).astype(np.float32)
    frames = np.ones(count, bool)
    return FaceParams(
        schema=flame_schema(backend, vertices.shape[1]), video=VideoMeta("v.mp4", 256, 256, 25, 1, count),
        track_id=0, identity=reposer.flame.v_template.numpy().copy(), face_found=frames,
        crop_matrix=np.tile(crop, (count, 1, 1)), rotation=rotation, scale=scale, translation=translation,
        expression=expression.astype(np.float32), mouth=pose[:, 3:4].astype(np.float32), vertices=vertices,
        landmarks=vertices.copy(), fit_error=np.zeros(count, np.float32), mouth_occluded=~frames)


@pytest.mark.parametrize("backend", ["flame-deca", "flame-fit"])
def test_reposed_meshes_are_where_the_backend_s_camera_puts_the_new_codes(flame_model, backend):
    """The source mesh plus the displacement to other codes equals FLAME posed with those codes and placed by the
    same camera (the head turned, so where it turns about matters: DECA's root joint shifts with the expression,
    flame-fit's origin does not); unchanged codes move nothing."""
    from ned_outlier.reconstruction.flame_repose import FlameReposer

    reposer = FlameReposer(flame_model)
    rng = np.random.default_rng(0)
    source_codes = [(rng.normal(0, 1, 50), 0.1), (rng.normal(0, 1, 50), 0.0)]
    target_codes = [(rng.normal(0, 1, 50), 0.3), (source_codes[1][0], 0.2)]
    turn, cam = [0.2, 0.5, -0.1], np.array([8.0, 0.01, -0.02])
    source = reconstruction_of(reposer, backend, source_codes, turn, cam, CROP)
    target = reconstruction_of(reposer, backend, target_codes, turn, cam, CROP)
    frames = np.arange(2)
    moved = reposer.displacement(source, frames, target.expression, target.mouth)
    np.testing.assert_allclose(source.vertices + moved, target.vertices, atol=2e-4)
    assert np.abs(moved).max() > 0.1  # the codes do move the mesh
    unchanged = reposer.displacement(source, frames, source.expression, source.mouth)
    np.testing.assert_array_equal(unchanged, 0.0)


def test_the_reposer_refuses_codes_of_another_backend_or_model(flame_model):
    from dataclasses import replace

    from ned_outlier.reconstruction.flame_repose import FlameReposer
    from tests.factories import face_params

    reposer = FlameReposer(flame_model)
    with pytest.raises(UserError, match="mediapipe-au parameters of a 478-vertex mesh"):
        reposer.require_matching(face_params(np.zeros((1, 17)), np.zeros((1, 3))))
    other_model = replace(face_params(np.zeros((1, 17)), np.zeros((1, 3))), schema=flame_schema("flame-deca", 5023))
    with pytest.raises(UserError, match="not FLAME codes of this 300-vertex FLAME model"):
        reposer.require_matching(other_model)
