"""The neural renderer's conditioning drawn from FLAME meshes (backends flame-*): NMFC from FLAME's template, the
winding made outward, the eyes channel from DECA's 68 landmarks, and the trainer's data path with a flame-deca
reconstruction. FLAME's files are synthetic (tests/reconstruction/flame_fixture.py: the real keys and formats)
around small hand-made meshes."""

import numpy as np
import pytest
import torch

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.flame.model_file import load_flame_model
from ned_outlier.reconstruction.flame_deca import flame_schema
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.reconstruction.params import FaceParams, VideoMeta
from ned_outlier.renderer.neural.checkpoint import load_renderer, save_renderer
from ned_outlier.renderer.neural.conditioning import (CONDITION_CHANNELS, ConditioningConfig, ConditionRenderer,
                                                      backend_topology, mediapipe_topology, nmfc_colours,
                                                      outward_triangles)
from ned_outlier.renderer.neural.data import SequenceDataset
from ned_outlier.renderer.neural.inference import NeuralFaceRenderer
from ned_outlier.renderer.neural.networks import RendererGenerator
from ned_outlier.renderer.neural.objective import RendererNetworks, RendererObjective
from ned_outlier.renderer.neural.trainer import load_actor, load_renderer_config, run_topology
from tests.factories import REPO, face_clip, recorded_from
from tests.reconstruction.flame_fixture import (flame_arrays, landmark_embedding, write_flame_model,
                                                write_landmark_embedding)

SIZE = 64
FRONTAL = np.array([1.0, -1.0, -1.0])  # model (y up, z toward the camera) -> crop (y down, z away): a half-turn


def flame_files(folder, template: np.ndarray, triangles: np.ndarray, full_faces=None, full_bary=None):
    """(generic_model.pkl, landmark_embedding.npy) in `folder` of the mesh template (V, 3), triangles (F, 3): the
    other FLAME arrays random, the 68 fixed landmarks at faces full_faces (68,) with weights full_bary (68, 3)
    (random ones when None)."""
    arrays = flame_arrays(len(template), len(triangles)) | {"v_template": template, "f": triangles.astype(np.uint32)}
    embedding = landmark_embedding(len(triangles))
    if full_faces is not None:
        embedding |= {"full_lmk_faces_idx": np.asarray(full_faces)[None], "full_lmk_bary_coords": full_bary[None]}
    return (write_flame_model(folder / "generic_model.pkl", arrays),
            write_landmark_embedding(folder / "landmark_embedding.npy", embedding))


def flame_renderer(files, size: int = SIZE, **config) -> ConditionRenderer:
    return ConditionRenderer(ConditioningConfig(size=size, **config), backend_topology("flame-deca", *files))


def sphere(rings: int = 12, segments: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A unit UV sphere: vertices (V, 3) and triangles (F, 3) wound counter-clockwise seen from outside, i.e.
    (v1 - v0) x (v2 - v0) points away from the centre (checked face by face here, not by the code under test)."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([np.sin(theta)[:, None] * np.cos(phi), np.cos(theta)[:, None] * np.ones_like(phi),
                     np.sin(theta)[:, None] * np.sin(phi)], axis=-1).reshape(-1, 3)
    vertices = np.concatenate([[[0.0, 1.0, 0.0]], ring, [[0.0, -1.0, 0.0]]])
    index = lambda r, s: 1 + r * segments + s % segments  # noqa: E731
    faces = [(0, index(0, s), index(0, s + 1)) for s in range(segments)]
    for r in range(rings - 2):
        for s in range(segments):
            faces += [(index(r, s), index(r + 1, s), index(r + 1, s + 1)),
                      (index(r, s), index(r + 1, s + 1), index(r, s + 1))]
    faces += [(len(vertices) - 1, index(rings - 2, s + 1), index(rings - 2, s)) for s in range(segments)]
    faces = np.array(faces)
    corners = vertices[faces]
    outward = np.einsum("fk,fk->f", np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]),
                        corners.mean(axis=1))
    return vertices, np.where((outward > 0)[:, None], faces, faces[:, [0, 2, 1]])


def test_nmfc_is_the_templates_colour_interpolated_where_a_known_triangle_lands(tmp_path):
    # Template axes with different ranges (x -2..2, y -4..4, z -1..3): NMFC normalises each axis on its own.
    template = np.zeros((11, 3))  # 11: the fixture's FLAME arrays weight vertex 10 to the jaw
    template[:4] = [[0.0, 0.0, 0.0], [2.0, 0.0, 1.0], [0.0, 4.0, 3.0], [-2.0, -4.0, -1.0]]
    renderer = flame_renderer(flame_files(tmp_path, template, np.array([[0, 1, 2]])))
    posed = np.full((11, 3), 30.0)
    posed[:3] = [[10.0, 10.0, 5.0], [50.0, 10.0, 5.0], [10.0, 50.0, 5.0]]
    image = renderer(torch.tensor(posed, dtype=torch.float32)[None])[0]
    # pixel (row 20, column 20) = v0 + 0.25 (v1 - v0) + 0.25 (v2 - v0): weights 0.5, 0.25, 0.25
    colours = np.array([[0.5, 0.5, 0.25], [1.0, 0.5, 0.5], [0.5, 1.0, 1.0]])  # (template - min) / (max - min)
    np.testing.assert_allclose(nmfc_colours(template)[:3], colours)
    expected = 0.5 * colours[0] + 0.25 * colours[1] + 0.25 * colours[2]
    np.testing.assert_allclose((image[:3, 20, 20].numpy() + 1) / 2, expected, atol=1e-5)
    np.testing.assert_allclose((image[:3, 11, 11].numpy() + 1) / 2, colours[0], atol=0.04)  # near v0
    assert (image[:, 40, 40] == -1).all()  # beyond the hypotenuse: no face


@pytest.mark.parametrize("flipped", [False, True])
def test_normals_face_the_camera_whichever_way_the_file_winds_its_triangles(tmp_path, flipped):
    vertices, faces = sphere()
    shipped = faces[:, [0, 2, 1]] if flipped else faces
    np.testing.assert_array_equal(outward_triangles(vertices, shipped), faces)
    renderer = flame_renderer(flame_files(tmp_path, vertices, shipped))
    posed = vertices * 25 * FRONTAL + [(SIZE - 1) / 2, (SIZE - 1) / 2, 40.0]
    image = renderer(torch.tensor(posed, dtype=torch.float32)[None])[0]
    covered = image[0] > -1
    assert covered.sum() > 0.4 * SIZE * SIZE
    normals = image[3:6][:, covered]
    torch.testing.assert_close(normals.norm(dim=0), torch.ones(normals.shape[1]))
    assert image[5, 31:33, 31:33].max() < -0.95  # the sphere's front looks straight at the camera
    assert (normals[2] < 0.05).all()  # only its front half shows: nothing faces away
    assert image[3, 31, 10] < -0.8 and image[4, 10, 31] < -0.8  # left rim: normal x < 0; top rim: y < 0 (y down)


def test_the_eyes_channel_draws_the_contours_of_the_68_landmarks_eye_points(tmp_path):
    # Landmark i is 0.5 a + 0.25 b + 0.25 c of its own small triangle (a, b, c) around point i; the eyes (iBUG
    # 37-42 and 43-48) are hexagons, every other landmark on a row far below them. A quad behind covers the crop
    # (its diagonal off the pixel centres, where neither of its triangles would cover them).
    rng = np.random.default_rng(3)
    points = np.stack([rng.uniform(4, 60, 68) + 0.3, np.full(68, 54.7)], axis=1)
    angles = np.deg2rad(np.arange(0, 360, 60) + 10)
    for first, centre in ((36, (18.3, 22.6)), (42, (44.2, 21.4))):
        points[first:first + 6] = np.stack([centre[0] + 9 * np.cos(angles), centre[1] + 4 * np.sin(angles)], 1)
    offsets = np.array([[-1.0, -1.0], [2.0, 0.0], [0.0, 2.0]])  # 0.5 d0 + 0.25 d1 + 0.25 d2 = 0
    quad = [[-9.3, -8.1], [75.2, -9.4], [74.6, 75.3], [-8.8, 76.1]]
    xy = np.concatenate([(points[:, None] + offsets).reshape(-1, 2), quad])
    posed = np.concatenate([xy, np.full((len(xy), 1), 10.0)], axis=1)
    posed[-4:, 2] = 50.0
    back = 3 * 68
    faces = np.concatenate([np.arange(back).reshape(68, 3), [[back, back + 1, back + 2], [back, back + 2, back + 3]]])
    bary = np.tile([0.5, 0.25, 0.25], (68, 1))
    files = flame_files(tmp_path, posed * FRONTAL, faces, np.arange(68), bary)
    eyes = flame_renderer(files, eye_thickness=8.0)(torch.tensor(posed, dtype=torch.float32)[None])  # 2 px wide
    drawn = eyes[0, 6].numpy() == 1
    rows, columns = np.mgrid[:SIZE, :SIZE]
    centres = np.stack([columns, rows], axis=-1).reshape(-1, 1, 2).astype(np.float64)
    expected = np.zeros(SIZE * SIZE, bool)
    for first in (36, 42):
        starts, ends = points[first:first + 6], np.roll(points[first:first + 6], -1, axis=0)
        along = np.einsum("pkd,kd->pk", centres - starts, ends - starts) / ((ends - starts) ** 2).sum(1)
        along = np.clip(along, 0, 1)
        gap = centres - (starts + along[..., None] * (ends - starts))
        expected |= ((gap ** 2).sum(-1) <= 1.0).any(axis=1)  # within half the line width
    np.testing.assert_array_equal(drawn, expected.reshape(SIZE, SIZE))
    assert not drawn[22, 18] and not drawn[21, 44]  # no pupil disc for FLAME


@pytest.fixture
def flame_actor(tmp_path, monkeypatch):
    """A six-frame still clip (256 px), a flame-deca FaceParams of a sphere 'head' in front of it, the FLAME files of
    the sphere, and the tiny renderer config reading them."""
    monkeypatch.delenv("FLAME_MODEL_PATH", raising=False)
    monkeypatch.delenv("FLAME_LANDMARK_EMBEDDING_PATH", raising=False)
    vertices, faces = sphere()
    files = flame_files(tmp_path, vertices, faces)
    clip = face_clip(tmp_path / "clip.mp4", 6)
    frames, count = 6, len(vertices)
    zeros = lambda *shape: np.zeros((frames, *shape), np.float32)  # noqa: E731
    posed = np.repeat((vertices * 60 * FRONTAL + [128.0, 120.0, 200.0])[None], frames, axis=0).astype(np.float32)
    params = FaceParams(
        schema=flame_schema("flame-deca", count), video=VideoMeta("clip.mp4", 256, 256, 25, 1, frames), track_id=0,
        identity=vertices.astype(np.float32), face_found=np.ones(frames, bool),
        crop_matrix=np.repeat(np.eye(2, 3)[None], frames, axis=0), rotation=np.repeat(np.eye(3)[None], frames, 0),
        scale=np.full(frames, 60.0), translation=zeros(3), expression=zeros(50), mouth=zeros(1), vertices=posed,
        landmarks=posed, fit_error=zeros(), mouth_occluded=np.zeros(frames, bool))
    saved = recorded_from(params, clip).save(tmp_path / "params.npz")

    def config(*overrides):
        return load_renderer_config(REPO / "configs/renderer/tiny_cpu.yaml", [
            f"data.video={clip}", f"data.params={saved}", f"train.output_dir={tmp_path / 'run'}", *overrides])

    return config, files, params.schema, tmp_path / "run"


def test_the_trainers_data_path_takes_a_flame_reconstruction(flame_actor):
    config, (model, embedding), _, _ = flame_actor
    config = config(f"data.flame_model={model}", f"data.landmark_embedding={embedding}")
    topology = run_topology(config, "flame-deca")
    params, frames = load_actor(config, progress=False, topology=topology)
    assert frames.vertices.shape == (6, len(topology.template), 3)
    images, vertices = SequenceDataset(frames, 2, range(6))[0]
    nets = RendererNetworks(config.model, topology)
    conditions = nets.condition_sequence(vertices[None])
    assert conditions.shape == (1, 4, CONDITION_CHANNELS, 64, 64)
    assert conditions[0, 0, 5, 30, 32] < -0.9  # the sphere seen from the front, its normal toward the camera
    loss, terms, fakes = RendererObjective(nets, config.loss)("g", images[None], conditions, vertices[None])
    assert torch.isfinite(loss) and fakes.shape == (1, 2, 3, 64, 64)


def test_a_missing_flame_file_is_one_line_naming_the_key_and_variable_before_any_frame(flame_actor):
    config, (_, embedding), _, output = flame_actor
    with pytest.raises(UserError) as error:
        load_actor(config(f"data.landmark_embedding={embedding}"), progress=False)
    message = str(error.value)
    assert "FLAME_MODEL_PATH" in message and "data.flame_model" in message and "\n" not in message
    assert not (output / "frames.npy").exists()  # refused before the crops are cut


def test_a_renderer_of_the_other_topology_is_refused(flame_actor, tmp_path):
    config, files, schema, _ = flame_actor
    model = config().model
    generator = RendererGenerator(CONDITION_CHANNELS, model.generator)
    mediapipe = save_renderer(generator, tmp_path / "mediapipe.safetensors", model, mediapipe_au_model()[1], 256)
    with pytest.raises(UserError, match="mediapipe-au"):
        load_renderer(mediapipe, expected_schema=schema)
    flame = load_renderer(save_renderer(generator, tmp_path / "flame.safetensors", model, schema, 256), schema)
    assert flame.schema.backend == "flame-deca"
    with pytest.raises(UserError, match="vertices"):
        NeuralFaceRenderer(flame, topology=mediapipe_topology())
    assert NeuralFaceRenderer(flame, topology=backend_topology("flame-deca", *files)).conditions.topology.name \
        == "flame"


def test_flame_topology_comes_from_the_model_file(tmp_path):
    vertices, faces = sphere()
    model, embedding = flame_files(tmp_path, vertices, faces)
    topology = backend_topology("flame-emoca", model, embedding)
    flame = load_flame_model(model)
    np.testing.assert_array_equal(topology.template, flame.v_template)
    assert topology.n_vertices == flame.num_vertices and topology.pupils == ()
    with pytest.raises(UserError, match="flame-"):
        backend_topology("other-backend")
