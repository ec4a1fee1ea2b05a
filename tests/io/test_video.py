"""Streaming video reader/writer and atomic outputs, on small videos made in tmp_path and on the Pexels clip."""

from __future__ import annotations

import errno
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from ned_outlier.assets import asset_path
from ned_outlier.errors import UserError
from ned_outlier.io import VideoReader, VideoWriter, atomic_output, ensure_not_input
from ned_outlier.io.atomic import claim_outputs, output_folder
from ned_outlier.io.video import EncoderConfig


def make_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    """`count` distinct smooth RGB frames (height, width, 3) uint8: a colour ramp with a square that moves."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(count):
        frame = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 40 + 10 * i)], axis=-1)
        top, left = (3 * i) % (height - 16), (5 * i) % (width - 16)
        frame[top : top + 16, left : left + 16] = 255
        frames.append(frame.astype(np.uint8))
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps=Fraction(25), **kwargs) -> Path:
    height, width, _ = frames[0].shape
    with VideoWriter(path, fps, width, height, **kwargs) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def read_all(path: Path) -> list[np.ndarray]:
    return list(VideoReader(path))


def audio_duration_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


def assert_round_trip(original: list[np.ndarray], decoded: list[np.ndarray]) -> None:
    """Same count and shape, small error, and each decoded frame is closest to its own original (order kept)."""
    assert len(decoded) == len(original)
    assert all(frame.shape == original[0].shape and frame.dtype == np.uint8 for frame in decoded)
    errors = np.array([[np.abs(d.astype(int) - o).mean() for o in original] for d in decoded])
    assert errors.diagonal().max() < 4.0, errors.diagonal()
    assert (errors.argmin(axis=1) == np.arange(len(original))).all()


# --- round trips --------------------------------------------------------------------------------------------


def test_round_trip_keeps_frames_size_and_order(tmp_path):
    frames = make_frames(12, 48, 64)
    path = write_video(tmp_path / "out.mp4", frames)
    decoded = read_all(path)
    assert_round_trip(frames, decoded)
    assert all(frame.flags.c_contiguous for frame in decoded)
    info = VideoReader(path).info
    assert (info.width, info.height, info.frame_count, info.has_audio) == (64, 48, 12, False)


def test_iterating_twice_restarts_from_the_first_frame(tmp_path):
    reader = VideoReader(write_video(tmp_path / "out.mp4", make_frames(5, 48, 64)))
    first, second = list(reader), list(reader)
    assert len(first) == len(second) == 5
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("fps", [Fraction(24000, 1001), Fraction(25)])
def test_frame_rate_is_kept_exactly(tmp_path, fps):
    path = write_video(tmp_path / "out.mp4", make_frames(10, 48, 64), fps=fps)
    info = VideoReader(path).info
    assert info.fps == fps  # a Fraction compared exactly: 23.976 or 2997/125 would fail
    assert info.fps_float == pytest.approx(float(fps))
    assert info.frame_count == 10
    assert info.duration_s == pytest.approx(10 / fps, abs=1e-3)


def test_odd_size_is_kept(tmp_path):
    frames = make_frames(6, 49, 65)
    path = write_video(tmp_path / "odd.mp4", frames)
    assert (VideoReader(path).info.width, VideoReader(path).info.height) == (65, 49)
    assert_round_trip(frames, read_all(path))


def test_non_ascii_path(tmp_path):
    frames = make_frames(4, 48, 64)
    path = write_video(tmp_path / "vidéo_ü 名.mp4", frames)
    assert_round_trip(frames, read_all(path))


def test_grayscale_source_reads_as_rgb(tmp_path, testsrc):
    path = testsrc(tmp_path / "gray.mkv", "-pix_fmt", "gray", "-c:v", "ffv1")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "gray"
    reader = VideoReader(path)
    assert reader.info.frame_count == 25  # mkv records no count: estimated from duration * fps
    frames = list(reader)
    assert len(frames) == 25
    assert frames[0].shape == (48, 64, 3)
    assert (frames[0][..., 0] == frames[0][..., 2]).all() and frames[0].std() > 10


# --- audio -------------------------------------------------------------------------------------------------


def test_audio_is_muxed_and_cut_to_the_video(tmp_path, testsrc):
    source = testsrc(tmp_path / "source.mp4", "-c:v", "libx264", "-c:a", "aac", seconds=2, audio=True)
    path = write_video(tmp_path / "out.mp4", make_frames(25, 48, 64), audio_from=source)  # 1 s of video
    assert sorted(tmp_path.iterdir()) == [path, source]  # the video-only scratch file is gone
    info = VideoReader(path).info
    assert info.has_audio and info.frame_count == 25
    # Stream copy cuts audio at packet granularity: at most one AAC frame (1024 samples at 44.1 kHz) past the video.
    assert info.duration_s - 0.1 < audio_duration_s(path) <= info.duration_s + 1024 / 44100 + 1e-6


def test_audio_that_mp4_cannot_hold_is_reencoded(tmp_path, ffmpeg):
    source = ffmpeg(tmp_path / "tone.wav", "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "pcm_mulaw")
    path = write_video(tmp_path / "out.mp4", make_frames(25, 48, 64), audio_from=source)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    assert audio_duration_s(path) == pytest.approx(1.0, abs=0.1)


def test_no_audio_when_the_source_has_none(tmp_path, testsrc):
    source = testsrc(tmp_path / "silent.mp4", "-c:v", "libx264")
    path = write_video(tmp_path / "out.mp4", make_frames(5, 48, 64), audio_from=source)
    assert not VideoReader(path).info.has_audio


# --- bad inputs --------------------------------------------------------------------------------------------


def read_to_end(path: Path) -> None:
    for _ in VideoReader(path):
        pass


def test_missing_path(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        VideoReader(tmp_path / "nope.mp4")


def test_directory_path(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        VideoReader(tmp_path)


@pytest.mark.parametrize("name", ["notes.txt", "notes.mp4"])
def test_text_file_is_not_a_video(tmp_path, name):
    path = tmp_path / name
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(UserError, match="not a readable media file"):
        VideoReader(path)


@pytest.mark.parametrize("faststart", [True, False])
def test_truncated_file(tmp_path, testsrc, faststart):
    """Cut to 60%: with the index first (faststart) the frames run out mid-stream; without it the index is gone."""
    flags = ["-movflags", "+faststart"] if faststart else []
    path = testsrc(tmp_path / "full.mp4", "-c:v", "libx264", "-g", "10", *flags, size="96x64", seconds=2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(UserError, match="corrupt or truncated" if faststart else "not a readable media file"):
        read_to_end(path)


def test_file_cut_exactly_between_packets(tmp_path, testsrc):
    """No packet is damaged, so only the container's frame count shows the missing frames."""
    path = testsrc(tmp_path / "full.mp4", "-c:v", "libx264", "-movflags", "+faststart", size="96x64", seconds=2)
    with av.open(str(path)) as container:
        ends = [packet.pos + packet.size for packet in container.demux(video=0) if packet.size]
    path.write_bytes(path.read_bytes()[: ends[len(ends) // 2]])
    with pytest.raises(UserError, match="corrupt or truncated"):
        read_to_end(path)


def test_file_cut_inside_its_last_packet(tmp_path, testsrc):
    """Every packet is there, the last one short: only the demuxer's corrupt flag shows it (the decoder conceals)."""
    path = testsrc(tmp_path / "full.mp4", "-c:v", "libx264", "-movflags", "+faststart", size="96x64", seconds=2)
    path.write_bytes(path.read_bytes()[:-5])  # faststart puts the index first: the file ends with the last frame
    with pytest.raises(UserError, match="corrupt or truncated"):
        read_to_end(path)


def test_garbage_in_the_middle(tmp_path, testsrc):
    path = testsrc(tmp_path / "full.mp4", "-c:v", "libx264", "-movflags", "+faststart", size="96x64", seconds=2)
    data = bytearray(path.read_bytes())
    start, stop = len(data) * 6 // 10, len(data) * 7 // 10
    data[start:stop] = np.random.default_rng(0).integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    reader = VideoReader(path)  # the start of the file is intact
    with pytest.raises(UserError, match=r"corrupt or truncated after frame [1-9]"):
        for _ in reader:
            pass


def test_audio_only_file(tmp_path, ffmpeg):
    path = ffmpeg(tmp_path / "tone.m4a", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac")
    with pytest.raises(UserError, match="has no video stream"):
        VideoReader(path)


@pytest.mark.parametrize(
    "name, output_args",
    [
        ("fragmented.mp4", ["-c:v", "libx264", "-movflags", "frag_keyframe+empty_moov"]),  # track header written first
        ("zero.avi", ["-c:v", "mpeg4"]),
    ],
)
def test_video_stream_with_zero_frames(tmp_path, testsrc, name, output_args):
    path = testsrc(tmp_path / name, "-frames:v", "0", *output_args)
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1  # a video stream exists, it is just empty
    with pytest.raises(UserError, match="contains no video frames"):
        VideoReader(path)


# --- writer failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_audio", [False, True])
def test_exception_in_writer_leaves_nothing(tmp_path, testsrc, with_audio):
    audio = testsrc(tmp_path / "source.mp4", "-c:v", "libx264", "-c:a", "aac", audio=True) if with_audio else None
    before = set(tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(tmp_path / "out.mp4", Fraction(25), 64, 48, audio_from=audio) as writer:
            for frame in make_frames(30, 48, 64):
                writer.write(frame)
            raise RuntimeError("boom")
    assert set(tmp_path.iterdir()) == before  # neither the output nor a hidden temporary file
    assert writer._process.returncode is not None  # ffmpeg was stopped, not left running


def test_writer_rejects_wrong_frames(tmp_path):
    with pytest.raises(ValueError, match="no frames"):  # the ValueError from inside also aborts the writer
        with VideoWriter(tmp_path / "out.mp4", Fraction(25), 64, 48) as writer:
            wrong = [np.zeros((48, 64, 3), np.float32), np.zeros((48, 65, 3), np.uint8), np.zeros((48, 64), np.uint8)]
            for bad in wrong:
                with pytest.raises(ValueError, match="uint8 of shape"):
                    writer.write(bad)
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_failure_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="ffmpeg failed writing .*preset"):
        write_video(tmp_path / "out.mp4", make_frames(3, 48, 64), encoder=EncoderConfig(preset="no-such-preset"))
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_to_overwrite_its_audio_source(tmp_path, testsrc):
    source = testsrc(tmp_path / "source.mp4", "-c:v", "libx264", "-c:a", "aac", audio=True)
    content = source.read_bytes()
    for same in (source, tmp_path / "." / "source.mp4"):
        with pytest.raises(UserError, match="same file"):
            VideoWriter(same, Fraction(25), 64, 48, audio_from=source)
    assert source.read_bytes() == content


def test_writer_in_missing_directory(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(UserError, match=f"cannot write into directory {missing}"):
        VideoWriter(missing / "out.mp4", Fraction(25), 64, 48)
    with pytest.raises(UserError, match="is a directory"):  # found before encoding, not at the final rename
        VideoWriter(tmp_path, Fraction(25), 64, 48)


# --- atomic outputs ----------------------------------------------------------------------------------------


def test_atomic_output_renames_on_success(tmp_path):
    target = tmp_path / "result.mp4"
    with atomic_output(target) as temp:
        assert temp.parent == tmp_path and temp.name.startswith(".result.mp4.partial-") and temp.suffix == ".mp4"
        temp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data" and list(tmp_path.iterdir()) == [target]


def test_atomic_output_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "result.mp4"
    with pytest.raises(KeyError):
        with atomic_output(target) as temp:
            temp.write_bytes(b"half")
            raise KeyError("stop")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_on_a_full_disk_is_a_user_error_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "result.npz"
    target.write_bytes(b"old")
    with pytest.raises(UserError, match="cannot write .*result.npz: No space left on device"):
        with atomic_output(target) as temp:
            temp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == b"old"
    with pytest.raises(PermissionError):  # any other OSError in the block is not the output's: it keeps its type
        with atomic_output(target):
            raise PermissionError(errno.EACCES, "elsewhere")
    assert list(tmp_path.iterdir()) == [target]


def test_output_folder_made_for_a_failed_run_is_removed_while_empty(tmp_path):
    with pytest.raises(KeyError):
        with output_folder(tmp_path / "a" / "b") as folder:
            assert folder.is_dir()
            raise KeyError("failed")
    assert list(tmp_path.iterdir()) == []  # both folders made here are gone
    with pytest.raises(KeyError):
        with output_folder(tmp_path / "a" / "b") as folder:
            (folder / "written.csv").write_text("x")
            raise KeyError("failed")
    assert (tmp_path / "a" / "b" / "written.csv").is_file()  # what was written is kept
    (tmp_path / "a" / "b" / "written.csv").unlink()
    with pytest.raises(KeyError):
        with output_folder(tmp_path / "a" / "b"):  # there before: never removed
            raise KeyError("failed")
    assert (tmp_path / "a" / "b").is_dir()
    with output_folder(tmp_path / "c"):
        pass
    assert (tmp_path / "c").is_dir()  # a run that succeeds keeps its folder, empty or not
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot create output folder"):
        with output_folder(tmp_path / "file" / "out"):
            pass


def test_stale_partial_files_of_dead_writers_are_removed_and_those_of_running_ones_kept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # the id of a process that has ended
    target = tmp_path / "out.mp4"
    stale = tmp_path / f".out.mp4.partial-{dead}-0123abcd.mp4"
    running = tmp_path / f".out.mp4.partial-{os.getpid()}-0123abcd.mp4"
    other = tmp_path / f".other.mp4.partial-{dead}-0123abcd.mp4"  # another output's
    for path in (stale, running, other):
        path.write_bytes(b"half")
    with claim_outputs([target]):
        assert not stale.exists() and running.exists() and other.exists()
        assert (tmp_path / ".out.mp4.lock").read_text() == f"{os.getpid()}\n"
    assert sorted(tmp_path.iterdir()) == [other, running]  # the lock is gone again
    with atomic_output(target) as temp:
        assert temp.name.startswith(f".out.mp4.partial-{os.getpid()}-")  # the writer's id, for the next cleanup
        temp.write_bytes(b"x")


def test_one_file_for_two_outputs_is_refused(tmp_path):
    with pytest.raises(UserError, match="one file is given for two outputs"):
        with claim_outputs([tmp_path / "p.npz", tmp_path / "." / "p.npz"]):
            pass


def test_ensure_not_input_sees_through_links(tmp_path):
    source = tmp_path / "in.mp4"
    source.write_bytes(b"x")
    os.link(source, tmp_path / "hard.mp4")
    (tmp_path / "soft.mp4").symlink_to(source)
    for alias in ("in.mp4", "hard.mp4", "soft.mp4", "sub/../in.mp4"):
        with pytest.raises(UserError, match="same file"):
            ensure_not_input(tmp_path / alias, tmp_path / "other.mp4", source)
    ensure_not_input(tmp_path / "new.mp4", source)  # a different, not yet existing output is fine


# --- the real clip -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pexels_clip():
    reader = VideoReader(asset_path("pexels_video"))
    info = reader.info
    assert (info.width, info.height, info.frame_count, info.has_audio) == (640, 360, 472, True)
    assert info.fps == Fraction(24000, 1001)
    assert info.duration_s == pytest.approx(19.685, abs=0.01)
    count = 0
    for frame in reader:
        assert frame.shape == (360, 640, 3) and frame.dtype == np.uint8
        count += 1
    assert count == 472


def test_audio_shorter_than_the_video_drops_no_frame(tmp_path, testsrc):
    """The mux cuts audio at the video's end but never cuts the video at the audio's end."""
    source = testsrc(tmp_path / "src.mp4", "-shortest", "-c:a", "aac", size="64x48", rate="25", seconds=2, audio=True)
    short_audio = testsrc(tmp_path / "short_audio.m4a", "-vn", "-c:a", "aac", seconds=0.5, audio=True)
    frames = list(VideoReader(source))
    out = tmp_path / "out.mp4"
    with VideoWriter(out, Fraction(25), 64, 48, audio_from=short_audio) as writer:
        for frame in frames:
            writer.write(frame)
    assert len(list(VideoReader(out))) == len(frames) == 50
    assert VideoReader(out).info.has_audio


# --- variable frame rate ------------------------------------------------------------------------------------


def write_vfr(path: Path, frames: list[np.ndarray], pts_ms: list[int]) -> Path:
    """frames (H, W, 3) encoded with PyAV at the given start times, in milliseconds: a variable-frame-rate video."""
    height, width, _ = frames[0].shape
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for frame, pts in zip(frames, pts_ms):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = pts, Fraction(1, 1000)
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return path


def decoded_times_s(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return np.array([float(frame.pts * stream.time_base) for frame in container.decode(stream)])


def test_a_variable_frame_rate_video_keeps_its_timestamps_and_its_audio_in_sync(tmp_path, ffmpeg):
    """20 frames of 80 ms, then 20 of 20 ms (2 s; at the average rate of 20 fps frame 20 would start at 1.0 s, not
    1.6 s): the output's frames start when the source's do, within a tick, and the audio ends with the video."""
    durations = [80] * 20 + [20] * 20
    pts = np.concatenate([[0], np.cumsum(durations[:-1])]).tolist()
    silent = write_vfr(tmp_path / "silent.mp4", make_frames(40, 48, 64), pts)
    source = ffmpeg(tmp_path / "vfr.mp4", "-i", str(silent), "-f", "lavfi", "-i", "sine=sample_rate=44100",
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-t", "2")
    reader = VideoReader(source)
    times = reader.frame_times()
    assert times is not None and len(times.pts) == 40
    out = write_video(tmp_path / "out.mp4", read_all(source), fps=reader.info.fps, audio_from=source, times=times)
    assert sorted(tmp_path.iterdir()) == [out, silent, source]  # no scratch file left
    expected, got = decoded_times_s(source), decoded_times_s(out)
    assert len(got) == 40
    np.testing.assert_allclose(got - got[0], expected - expected[0], atol=float(times.time_base) + 1e-9)
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        video_s = float(video.duration * video.time_base)
    assert video_s == pytest.approx(2.0, abs=1e-3)
    assert video_s - 0.05 < audio_duration_s(out) <= video_s + 1024 / 44100 + 1e-6
    assert_round_trip(read_all(source), read_all(out))


def test_a_constant_rate_video_has_no_frame_times(tmp_path, testsrc):
    assert VideoReader(testsrc(tmp_path / "cfr.mp4", "-c:v", "libx264")).frame_times() is None


def test_the_encoders_crf_sets_how_much_detail_is_kept(tmp_path):
    rng = np.random.default_rng(0)
    # grey noise: all detail, none of it in the chroma that yuv420p halves
    frames = [np.repeat(rng.integers(0, 256, (48, 64, 1), dtype=np.uint8), 3, axis=2) for _ in range(3)]
    errors, sizes = {}, {}
    for crf in (10, 30):
        path = write_video(tmp_path / f"crf{crf}.mp4", frames, encoder=EncoderConfig(crf=crf))
        errors[crf] = np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(read_all(path), frames)])
        sizes[crf] = path.stat().st_size
    assert errors[10] < 0.5 * errors[30] and sizes[10] > sizes[30]
