"""EditSession, what the web page keeps between clicks: one reconstruction per input's content, the faces listed
largest first with thumbnails, edits through edit_video with the CLI's names and errors."""

import shutil

import numpy as np
import pytest

import ned_outlier.edit_session as edit_session
from ned_outlier.assets import asset_path
from ned_outlier.edit_session import EditSession
from ned_outlier.errors import UserError
from ned_outlier.io.image import read_image
from ned_outlier.io.video import VideoReader
from ned_outlier.pipeline import load_edit_config
from ned_outlier.reconstruction.reconstructor import ReconstructionConfig

pytestmark = pytest.mark.slow


@pytest.fixture
def counted(monkeypatch):
    """The inputs reconstruct_faces was called for, in order."""
    calls = []
    real = edit_session.reconstruct_faces

    def counting(video, *args, **kwargs):
        calls.append(video)
        return real(video, *args, **kwargs)

    monkeypatch.setattr(edit_session, "reconstruct_faces", counting)
    return calls


@pytest.fixture
def session(tmp_path):
    return EditSession(tmp_path / "edits", load_edit_config(), ReconstructionConfig(), capacity=2, progress=False)


def test_a_second_edit_and_a_copy_of_the_input_reuse_the_reconstruction(session, counted, tmp_path):
    clip = asset_path("single_face_video")
    faces = session.faces(clip)
    assert [(face.track_id, face.first_frame, face.last_frame) for face in faces] == [(0, 0, 71)]
    assert faces[0].thumbnail.shape == (128, 128, 3) and faces[0].thumbnail.std() > 10  # a picture, not a blank
    full = session.edit(clip, emotion="sadness", intensity=1.0)
    half = session.edit(clip, emotion="sad", intensity=0.5)
    copy = shutil.copy(clip, tmp_path / "renamed.mp4")
    again = session.edit(copy, emotion="sad", intensity=0.5)
    assert len(counted) == 1 and full.reused and half.reused and again.reused
    assert full.report.output.name == "single_face_sad.mp4" and again.report.output.name == "renamed_sad.mp4"
    assert full.report.output != half.report.output  # each edit its own folder: nothing overwritten
    middle = [list(VideoReader(edit.report.output))[36].astype(int) for edit in (full, half, again)]
    source = list(VideoReader(clip))[36].astype(int)
    assert np.abs(middle[1] - source).mean() < np.abs(middle[0] - source).mean()  # half the intensity, less change
    assert np.abs(middle[1] - middle[2]).max() <= 1  # the copy is the same input
    assert VideoReader(full.report.preview).info.width == 2 * VideoReader(clip).info.width


def test_the_cache_keeps_the_last_inputs_only(session, counted, tmp_path):
    clip = asset_path("single_face_video")
    photo = tmp_path / "frame.png"
    shutil.copy(asset_path("multi_face_image"), photo)
    other = tmp_path / "other.jpg"
    shutil.copy(asset_path("multi_face_image"), other)
    other.write_bytes(other.read_bytes() + b"\0")  # another file's bytes, the same picture
    for path in (clip, photo, other, clip):  # capacity 2: the clip was dropped when `other` came
        session.faces(path)
    assert counted == [clip, photo, other, clip]


def test_a_group_photo_lists_every_face_largest_first_and_edits_one_or_all(session, tmp_path):
    photo = tmp_path / "group.jpg"
    shutil.copy(asset_path("multi_face_image"), photo)
    faces = session.faces(photo)
    assert len(faces) == 5
    sizes = [face.size for face in faces]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    assert faces[0].describe() == f"face {faces[0].track_id}"  # a photo has no frame span
    one = session.edit(photo, emotion="happy", face=faces[-1].track_id)
    largest = session.edit(photo, emotion="happy", face="largest")
    every = session.edit(photo, emotion="happy", face="all")
    assert [face.track_id for face in one.report.faces] == [faces[-1].track_id]
    assert [face.track_id for face in largest.report.faces] == [faces[0].track_id]
    assert len(every.report.faces) == 5
    assert every.report.output.name == "group_happy.jpg" and every.report.preview.name == "group_happy_preview.jpg"
    source, edited = read_image(photo).astype(int), read_image(every.report.output).astype(int)
    assert edited.shape == source.shape and np.abs(edited - source).mean() > 0


@pytest.mark.parametrize("request_, fragment", [
    ({"emotion": None}, "choose an emotion or a reference clip"),
    ({"emotion": "bored"}, "unknown emotion 'bored'"),
    ({"intensity": 1.5}, "intensity must be between 0 and 1"),
    ({"mouth": "open"}, "mouth must be 'keep' or 'edit'"),
    ({"face": 7}, "no face 7 in this input: choose one of face 0 (frames 0-71)"),
])
def test_bad_requests_are_the_cli_s_one_line_errors(session, request_, fragment):
    with pytest.raises(UserError, match="^" + fragment.replace("(", r"\(").replace(")", r"\)")) as raised:
        session.edit(asset_path("single_face_video"), **{"emotion": "sad", **request_})
    assert "\n" not in str(raised.value)


def test_an_input_without_a_face_or_not_a_video_is_refused(session, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 50)
    with pytest.raises(UserError, match="broken.mp4"):
        session.faces(broken)
    with pytest.raises(UserError, match="no face found"):
        session.faces(asset_path("no_face_video"))


def test_a_reference_clip_is_reconstructed_once_too(session, counted, ffmpeg, tmp_path):
    clip = asset_path("single_face_video")
    reference = ffmpeg(tmp_path / "laugh.mp4", "-i", str(asset_path("pexels_video")), "-frames:v", "15",
                       "-c:v", "libx264")
    first = session.edit(clip, reference=reference, intensity=1.0)
    second = session.edit(clip, reference=reference, intensity=0.5)
    assert counted == [clip, reference]
    assert not first.reused and second.reused
    assert first.report.output.name == "single_face_like_laugh.mp4"
    with pytest.raises(UserError, match="choose an emotion or a reference clip"):
        session.edit(clip, emotion="sad", reference=reference)
