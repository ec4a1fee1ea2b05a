"""FaceParams files round-trip exactly and refuse what they are not."""

import numpy as np
import pytest

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.reconstruction.params import FaceParams, ParamSchema, VideoMeta


def make_params(frames=6, seed=0):
    _, schema = mediapipe_au_model()
    rng = np.random.default_rng(seed)
    found = rng.uniform(size=frames) > 0.3
    def per_frame(*shape, dtype=np.float32):
        values = rng.normal(size=(frames, *shape)).astype(dtype)
        values[~found] = np.nan
        return values
    return FaceParams(
        schema=schema,
        video=VideoMeta("vidéo ü.mp4", 641, 361, 24000, 1001, frames),
        track_id=2,
        identity=rng.normal(size=(478, 3)).astype(np.float32),
        face_found=found,
        crop_matrix=per_frame(2, 3, dtype=np.float64),
        rotation=per_frame(3, 3),
        scale=per_frame(),
        translation=per_frame(3),
        expression=per_frame(len(schema.expression_names)),
        mouth=per_frame(len(schema.mouth_names)),
        vertices=per_frame(478, 3),
        landmarks=per_frame(478, 3),
        fit_error=per_frame(),
        mouth_occluded=rng.uniform(size=frames) > 0.8,
    )


def test_save_load_round_trips_exactly(tmp_path):
    params = make_params()
    loaded = FaceParams.load(params.save(tmp_path / "p.npz"))
    assert loaded.schema == params.schema and loaded.video == params.video and loaded.track_id == 2
    for name in FaceParams.ARRAYS:
        original, restored = getattr(params, name), getattr(loaded, name)
        assert restored.dtype == original.dtype, name
        np.testing.assert_array_equal(restored, original, err_msg=name)  # NaN == NaN here
    assert list(tmp_path.iterdir()) == [tmp_path / "p.npz"]  # no temp file left behind


def test_mismatched_frame_counts_are_refused():
    params = make_params()
    with pytest.raises(ValueError, match="expression"):
        FaceParams(**{**params.__dict__, "expression": params.expression[:-1]})


def test_load_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        FaceParams.load(tmp_path / "missing.npz")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, something=np.zeros(3))
    with pytest.raises(UserError, match="not a FaceParams file"):
        FaceParams.load(foreign)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(UserError, match="not a FaceParams file"):
        FaceParams.load(text)


def test_schema_mismatch_names_both_backends():
    _, schema = mediapipe_au_model()
    flame = ParamSchema("deca-flame", tuple(f"exp{i}" for i in range(50)), ("jaw0", "jaw1", "jaw2"), 5023)
    with pytest.raises(UserError, match="deca-flame.*mediapipe-au"):
        schema.require_same(flame, "checkpoint x.safetensors")
    schema.require_same(mediapipe_au_model()[1], "same")  # no error
