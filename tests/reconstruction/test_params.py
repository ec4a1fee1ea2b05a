"""FaceParams files round-trip exactly and refuse what they are not."""

import json

import numpy as np
import pytest

from ned_outlier.errors import UserError
from ned_outlier.io.video import VideoReader
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.reconstruction.params import (FORMAT_VERSION, FaceParams, ParamSchema, VideoMeta, load_params_of,
                                               no_hands)

from factories import recorded_from


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


def rewrite(path, out, version=None, drop=(), video=None):
    """The FaceParams file `path` copied to `out` as another format `version` would have it: the arrays in `drop`
    left out, its video record replaced by `video` (a dict)."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files if name not in drop}
    meta = json.loads(str(arrays["meta"]))
    assert meta["format_version"] == FORMAT_VERSION
    meta["format_version"] = meta["format_version"] if version is None else version
    meta["video"] = meta["video"] if video is None else video
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(out, **arrays)
    return out


def test_files_from_before_hands_load_without_hands(tmp_path, caplog):
    """Format 1 had no `hands`: such a file loads with every hand absent; a constructor call without hands too."""
    params = make_params()
    path = params.save(tmp_path / "p.npz")
    old = rewrite(path, tmp_path / "old.npz", version=1, drop=["hands"])
    loaded = FaceParams.load(old)
    assert "before hands were stored" in caplog.text
    assert loaded.hands.shape == (params.num_frames, 2, 21, 2) and loaded.hands.dtype == np.float32
    assert np.isnan(loaded.hands).all()
    np.testing.assert_array_equal(loaded.vertices, params.vertices)
    without = FaceParams(**{**params.__dict__, "hands": None})
    assert without.hands.shape == (params.num_frames, 2, 21, 2) and np.isnan(without.hands).all()
    rewrite(path, tmp_path / "new.npz", version=FORMAT_VERSION + 1)
    with pytest.raises(UserError, match=f"format {FORMAT_VERSION + 1}"):
        FaceParams.load(tmp_path / "new.npz")


def test_a_file_of_format_2_or_later_without_hands_is_refused(tmp_path):
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


@pytest.fixture
def three_videos(tmp_path, testsrc):
    """A 25-frame 64x48 test pattern, the same mirrored (same size, rate and length, other pictures) and the same
    pattern twice as long."""
    return (testsrc(tmp_path / "a.mp4", "-c:v", "libx264"),
            testsrc(tmp_path / "mirrored.mp4", "-vf", "hflip", "-c:v", "libx264"),
            testsrc(tmp_path / "long.mp4", "-c:v", "libx264", seconds=2))


def test_parameters_record_their_video_and_refuse_another(tmp_path, three_videos):
    video, mirrored, long = three_videos
    params = recorded_from(make_params(frames=25), video)
    assert (params.video.listed_frames, len(params.video.fingerprint)) == (25, 64)
    loaded = FaceParams.load(params.save(tmp_path / "p.npz"))
    assert loaded.video == params.video
    loaded.require_source(VideoReader(video))
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(video.read_bytes())
    loaded.require_source(VideoReader(copy))  # the same pictures under another name
    with pytest.raises(UserError, match=r"do not belong to .*mirrored.mp4: .*a.mp4, whose first frames differ"):
        loaded.require_source(VideoReader(mirrored))
    with pytest.raises(UserError, match=r"x p.npz do not belong to .*long.mp4 \(64x48, 25 fps, 50 frames\).*a.mp4 "
                                         r"\(64x48, 25 fps, 25 frames\)"):
        loaded.require_source(VideoReader(long), "x p.npz")


def test_files_without_the_record_load_with_a_warning_and_are_checked_by_size_and_rate(tmp_path, three_videos,
                                                                                         testsrc, caplog):
    video, mirrored, _ = three_videos
    path = recorded_from(make_params(frames=25), video).save(tmp_path / "p.npz")
    record = {"path": str(video), "width": 64, "height": 48, "fps_num": 25, "fps_den": 1, "frame_count": 25}
    old = FaceParams.load(rewrite(path, tmp_path / "old.npz", version=2, video=record))
    assert old.video.fingerprint is None and not caplog.text  # a cache of clips loads quietly ...
    load_params_of(tmp_path / "old.npz", mirrored)  # ... paired with a video, nothing tells them apart: a warning
    assert "old.npz was written before parameters recorded their video's frames" in caplog.text
    assert "mirrored.mp4 by size and frame rate only" in caplog.text
    with pytest.raises(UserError, match="96x64"):
        old.require_source(VideoReader(testsrc(tmp_path / "big.mp4", "-c:v", "libx264", size="96x64")))
    with pytest.raises(UserError, match="30 fps"):
        old.require_source(VideoReader(testsrc(tmp_path / "fast.mp4", "-c:v", "libx264", rate="30")))


def test_truncated_and_inconsistent_files_are_one_line_errors(tmp_path):
    path = make_params().save(tmp_path / "p.npz")
    data = path.read_bytes()
    for cut in (0, 100, len(data) // 2, len(data) - 1):  # EOFError, then BadZipFile
        truncated = tmp_path / f"cut{cut}.npz"
        truncated.write_bytes(data[:cut])
        with pytest.raises(UserError, match=f"cut{cut}.npz: not a FaceParams file, or a truncated one"):
            FaceParams.load(truncated)
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    np.savez(tmp_path / "short.npz", **{**arrays, "expression": arrays["expression"][:-1]})
    with pytest.raises(UserError, match="short.npz: a damaged FaceParams file .*expression has 5 frames"):
        FaceParams.load(tmp_path / "short.npz")
