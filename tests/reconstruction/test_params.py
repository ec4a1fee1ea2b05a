"""FaceParams files round-trip exactly and refuse what they are not."""

import json

import numpy as np
import pytest

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.reconstruction.params import FaceParams, ParamSchema, VideoMeta, no_hands


def make_params(frames=6, seed=0):
    _, schema = mediapipe_au_model()
    rng = np.random.default_rng(seed)
    found = rng.uniform(size=frames) > 0.3
    def per_frame(*shape, dtype=np.float32):
        values = rng.normal(size=(frames, *shape)).astype(dtype)
        values[~found] = np.nan
        return values
    hands = no_hands(frames)
    hands[found, 0] = rng.uniform(0, 640, size=(found.sum(), 21, 2))
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
        hands=hands,
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


def test_files_from_before_hands_load_without_hands(tmp_path, caplog):
    """Format 1 had no `hands`: such a file loads with every hand absent; a constructor call without hands too."""
    params = make_params()
    path = params.save(tmp_path / "p.npz")
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files if name != "hands"}
    meta = json.loads(str(arrays["meta"]))
    assert meta["format_version"] == 2
    arrays["meta"] = np.array(json.dumps({**meta, "format_version": 1}))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    loaded = FaceParams.load(old)
    assert "before hands were stored" in caplog.text
    assert loaded.hands.shape == (params.num_frames, 2, 21, 2) and loaded.hands.dtype == np.float32
    assert np.isnan(loaded.hands).all()
    np.testing.assert_array_equal(loaded.vertices, params.vertices)
    without = FaceParams(**{**params.__dict__, "hands": None})
    assert without.hands.shape == (params.num_frames, 2, 21, 2) and np.isnan(without.hands).all()
    arrays["meta"] = np.array(json.dumps({**meta, "format_version": 3}))
    np.savez(tmp_path / "new.npz", **arrays)
    with pytest.raises(UserError, match="format 3"):
        FaceParams.load(tmp_path / "new.npz")


def test_a_format_2_file_without_hands_is_refused(tmp_path):
    path = make_params().save(tmp_path / "p.npz")
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files if name != "hands"}
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(UserError, match="not a FaceParams file"):
        FaceParams.load(tmp_path / "broken.npz")


def test_mismatched_frame_counts_are_refused():
    params = make_params()
    with pytest.raises(ValueError, match="expression"):
        FaceParams(**{**params.__dict__, "expression": params.expression[:-1]})
    with pytest.raises(ValueError, match="hands"):
        FaceParams(**{**params.__dict__, "hands": params.hands[:-1]})
    with pytest.raises(ValueError, match="hands"):
        FaceParams(**{**params.__dict__, "hands": params.hands[:, :, :20]})


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
