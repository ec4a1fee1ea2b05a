"""Streaming video I/O: decode frames one at a time with PyAV, encode H.264 by piping frames into ffmpeg.

Frames are RGB uint8 arrays of shape (H, W, 3). A photo (ned_outlier.io.image.IMAGE_SUFFIXES) reads as a one-frame
video, upright (its EXIF orientation applied). Neither side holds more than a few frames, so memory does not
grow with the length of the video. A variable-frame-rate source keeps its frame timestamps: VideoReader.frame_times
reads them, and VideoWriter(times=...) writes them into the output, so the muxed audio stays in sync.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import imageio_ffmpeg
import numpy as np

from ned_outlier.errors import UserError
from ned_outlier.io.atomic import atomic_output, ensure_not_input
from ned_outlier.io.image import is_image, read_image
from ned_outlier.io.prefetch import prefetch

log = logging.getLogger(__name__)

PREFETCH_FRAMES = 4  # decoded frames held ahead of the consumer
FINGERPRINT_FRAMES = 3  # decoded frames hashed by VideoReader.fingerprint
PHOTO_FPS = Fraction(25)  # the frame rate of a photo read as a one-frame video (what FFmpeg's image2 demuxer says)


@dataclass(frozen=True)
class EncoderConfig:
    """libx264 settings of a written video: `crf` (constant rate factor, 0-51: lower keeps more detail in a larger
    file) and `preset` (x264's speed against compression: veryfast, faster, fast, medium, ...).

    The default is x264's customary crf 18, which every writer but the edit's keeps (SynthMEAD's clips among them,
    whose bytes the outlier experiment fingerprints). An edit is written at its config's `encoder`
    (configs/edit/default.yaml: crf 16, chosen there by `python benchmarks/encoder.py`).
    """

    crf: int = 18
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if isinstance(self.crf, bool) or not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise ValueError(f"encoder.crf must be an integer from 0 to 51 (lower keeps more detail), got {self.crf!r}")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    `fps` is exact (24000/1001, not 23.976). `frame_count` is the container's count when it records one, which
    may exceed the decoded count by a few frames when an mp4 edit list trims the start; otherwise it is estimated
    as duration * fps. `duration_s` is the video stream's duration (0.0 when the container records none).
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count: int
    has_audio: bool
    duration_s: float

    @property
    def fps_float(self) -> float:
        return float(self.fps)


@dataclass(frozen=True)
class FrameTimes:
    """When each frame of a variable-frame-rate video starts: pts (N,) in ticks of time_base, the first 0, rising;
    end: when the last frame ends, in ticks."""

    pts: tuple[int, ...]
    time_base: Fraction
    end: int

    @property
    def duration_s(self) -> float:
        return float(self.end * self.time_base)


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except av.error.FFmpegError as error:
        raise UserError(f"{path}: not a readable media file ({error.strerror})") from None


def _corrupt(path: Path, frames_done: int) -> UserError:
    return UserError(f"{path}: video is corrupt or truncated after frame {frames_done}")


def _decode(container: av.container.InputContainer, path: Path) -> Iterator[av.VideoFrame]:
    """Decode the first video stream packet by packet.

    A truncated file must not pass for a short video. The threaded decoder does not report every broken packet,
    so a packet the demuxer marks corrupt (a short read at the end of a cut file), a decoder error, or fewer
    packets than the container's index promises (a file cut exactly between packets) each raise UserError.
    """
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads, as many as there are cores
    frames_done = packets = 0
    try:
        for packet in container.demux(stream):
            if packet.is_corrupt:
                raise _corrupt(path, frames_done)
            packets += packet.dts is not None  # the empty packet that flushes the decoder at the end has no dts
            for frame in packet.decode():
                yield frame
                frames_done += 1
    except av.error.FFmpegError:
        raise _corrupt(path, frames_done) from None
    if packets < stream.frames:
        raise _corrupt(path, frames_done)


class VideoReader:
    """A video file validated at construction; iterating decodes it from the start, one frame at a time. A photo is
    a one-frame video (decoded by Pillow, upright as its EXIF orientation says; held while the reader lives).

    Each failure is a one-line UserError: missing path, a directory, not a media file, no video stream, no
    decodable frame (the first frame is decoded here to check), or corruption found while iterating.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise UserError(f"{self.path}: is a directory, not a video file")
        self._photo = read_image(self.path) if is_image(self.path) else None
        if self._photo is not None:
            height, width = self._photo.shape[:2]
            self.info = VideoInfo(self.path, width, height, PHOTO_FPS, 1, False, float(1 / PHOTO_FPS))
            return
        with _open(self.path) as container:
            if not container.streams.video:
                raise UserError(f"{self.path}: has no video stream")
            if next(_decode(container, self.path), None) is None:
                raise UserError(f"{self.path}: contains no video frames")
            self.info = _probe(container, self.path)

    @property
    def is_photo(self) -> bool:
        return self._photo is not None

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield C-contiguous RGB uint8 frames of shape (info.height, info.width, 3); any pixel format is converted.
        Decoding runs in a background thread a few frames ahead."""
        return prefetch(self._frames(), depth=PREFETCH_FRAMES)

    def _frames(self) -> Iterator[np.ndarray]:
        if self._photo is not None:
            yield self._photo.copy()
            return
        with _open(self.path) as container:
            for frame in _decode(container, self.path):
                yield np.ascontiguousarray(frame.to_ndarray(format="rgb24"))

    def frame_times(self) -> FrameTimes | None:
        """The frames' start times (packet timestamps, read without decoding) when they are not evenly spaced at
        info.fps (a frame more than a quarter of a frame period off), else None: a constant-rate video (or a photo)."""
        if self._photo is not None:
            return None
        with _open(self.path) as container:
            stream = container.streams.video[0]
            time_base = stream.time_base  # read while open: a closed container's stream may no longer have it
            pts = sorted(packet.pts for packet in container.demux(stream)
                         if packet.pts is not None and not packet.is_discard)
        if len(pts) < 2 or time_base is None:
            return None
        ticks = np.asarray(pts, np.int64) - pts[0]
        seconds = ticks * float(time_base)
        period = 1 / self.info.fps_float
        if np.abs(seconds - np.arange(len(ticks)) * period).max() <= period / 4:
            return None
        last = int(ticks[-1] - ticks[-2])  # the last frame lasts as long as the one before it
        return FrameTimes(tuple(int(t) for t in ticks), Fraction(time_base), int(ticks[-1]) + last)

    def fingerprint(self) -> str:
        """sha256 (hex) of the first FINGERPRINT_FRAMES decoded RGB frames: which pictures this video holds, for the
        cost of decoding those few frames (not the file's bytes: a copy or a remux of the same stream matches)."""
        digest = hashlib.sha256()
        if self._photo is not None:
            digest.update(self._photo.data)
            return digest.hexdigest()
        with _open(self.path) as container:
            frames = _decode(container, self.path)
            try:
                for _, frame in zip(range(FINGERPRINT_FRAMES), frames):
                    digest.update(np.ascontiguousarray(frame.to_ndarray(format="rgb24")).data)
            finally:
                frames.close()
        return digest.hexdigest()


def _probe(container: av.container.InputContainer, path: Path) -> VideoInfo:
    stream = container.streams.video[0]
    fps = stream.average_rate or stream.guessed_rate
    if not fps:
        raise UserError(f"{path}: the container records no frame rate")
    if stream.duration is not None:
        duration_s = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration_s = container.duration / av.time_base
    else:
        duration_s = 0.0
    return VideoInfo(
        path=path,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        fps=Fraction(fps),
        frame_count=stream.frames or round(duration_s * fps),
        has_audio=bool(container.streams.audio),
        duration_s=duration_s,
    )


def _has_audio(path: Path) -> bool:
    if not path.is_file():
        raise UserError(f"{path}: no such file (wanted for its audio track)")
    with _open(path) as container:
        return bool(container.streams.audio)


def _ffmpeg_reason(stderr: bytes) -> str:
    """The first line of ffmpeg's error log, without its `[component @ 0x...]` prefixes.

    ffmpeg 7+ runs its stages in threads: the first line is the cause, the lines after it are each stage
    shutting down, and the last ("Nothing was written into output file ...") names no cause at all.
    """
    lines = stderr.decode(errors="replace").strip().splitlines()
    return re.sub(r"^(\[[^]]*\]\s*)+", "", lines[0]) if lines else "no message from ffmpeg"


class VideoWriter:
    """Encode RGB uint8 frames of shape (height, width, 3) to H.264, atomically, optionally with `audio_from`'s audio.

    Use as a context manager. Frames stream through a pipe into the ffmpeg binary that imageio-ffmpeg ships; the
    output keeps exactly `fps` (a rational), `width` x `height` (odd sizes too) and every frame written. If
    `audio_from` has an audio stream, its first one is muxed in, cut to the video's length. `times` (a
    variable-frame-rate source's VideoReader.frame_times) gives each frame the source's timestamp instead of the
    constant rate `fps` (encoded without B-frames, then the packets retimed), so the source's audio stays in sync;
    when the frames written are not as many as it lists, the output keeps `fps` with a warning. Nothing appears at
    `path` until close() succeeds; an exception in the `with` block kills ffmpeg and leaves no file behind.
    `encoder`: libx264's quality and speed (EncoderConfig).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: Fraction,
        width: int,
        height: int,
        audio_from: str | os.PathLike | None = None,
        encoder: EncoderConfig = EncoderConfig(),
        times: FrameTimes | None = None,
    ):
        if not isinstance(fps, (Fraction, int)) or fps <= 0:
            raise ValueError(f"fps must be a positive Fraction (exact, like Fraction(24000, 1001)), got {fps!r}")
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        self.path = Path(path)
        self.shape = (height, width, 3)
        self._audio_from = None
        if audio_from is not None:
            ensure_not_input(self.path, audio_from)
            if _has_audio(Path(audio_from)):
                self._audio_from = Path(audio_from)
        self._fps = Fraction(fps)
        self._times = times
        self._frames_written = 0
        self._closed = False
        with ExitStack() as cleanup:  # undoes everything at once if a step below fails
            self._output = cleanup.enter_context(atomic_output(self.path))
            self._video = self._output
            if self._audio_from is not None:  # the video goes to a hidden scratch file; the mux writes the output
                self._video = self._output.with_name(f"{self._output.stem}-video{self._output.suffix}")
                cleanup.callback(self._video.unlink, missing_ok=True)
            self._encoded = self._video
            if times is not None:  # encoded at a constant rate into a scratch file, then retimed into _video
                self._encoded = self._output.with_name(f"{self._output.stem}-cfr{self._output.suffix}")
                cleanup.callback(self._encoded.unlink, missing_ok=True)
            self._stderr = cleanup.enter_context(tempfile.TemporaryFile())  # a file, not a pipe: cannot fill up
            self._process = subprocess.Popen(
                self._encode_command(self._fps, width, height, encoder),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
            )
            self._cleanup = cleanup.pop_all()

    def _encode_command(self, fps: Fraction, width: int, height: int, encoder: EncoderConfig) -> list[str]:
        # yuv420p halves the chroma resolution, so libx264 refuses odd sizes in it. Rather than resize or pad
        # (which would change the geometry), odd sizes use full-resolution chroma, yuv444p (High 4:4:4 profile:
        # exact size, but some hardware players cannot play it).
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        return [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"),
            *("-r", f"{fps.numerator}/{fps.denominator}"),  # input-side rational rate: no rounding, no dup/drop
            *("-i", "pipe:0", "-an"),
            *("-c:v", "libx264", "-preset", encoder.preset, "-crf", str(encoder.crf), "-pix_fmt", pix_fmt),
            # Without B-frames the packets come in presentation order, so _retime can give packet i frame i's time.
            *(("-bf", "0") if self._times is not None else ()),
            # ffmpeg converts RGB with the BT.601 matrix into limited range; say so, or players assume BT.709 for HD.
            *("-colorspace", "smpte170m", "-color_range", "tv"),
            str(self._encoded),
        ]

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame of shape (height, width, 3); ValueError for any other shape or dtype."""
        if self._closed:
            raise ValueError(f"{self.path}: write() after close()")
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.shape != self.shape:
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"frame must be uint8 of shape {self.shape}, got {got}")
        try:
            self._process.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            self._process.wait()
            raise self._ffmpeg_error() from None
        self._frames_written += 1

    def close(self) -> None:
        """Finish encoding, mux the audio, and move the result onto `path`. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._frames_written == 0:
                raise ValueError(f"{self.path}: no frames were written")
            try:
                self._process.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg exited early: its exit status and stderr say why
            if self._process.wait() != 0:
                raise self._ffmpeg_error()
            if self._encoded != self._video:
                self._retime()
            if self._audio_from is not None:
                self._mux_audio()
        except BaseException as error:
            self._abort(error)
            raise
        self._cleanup.close()

    def _ffmpeg_error(self) -> UserError:
        self._stderr.seek(0)
        return UserError(f"ffmpeg failed writing {self.path}: {_ffmpeg_reason(self._stderr.read())}")

    @property
    def duration_s(self) -> float:
        """How long the video written so far lasts: the source's times, or the frames at the constant rate."""
        if self._times is not None and len(self._times.pts) == self._frames_written:
            return self._times.duration_s
        return float(self._frames_written / self._fps)

    def _retime(self) -> None:
        """Copy the constant-rate encoding into _video with packet i at the source's time of frame i."""
        times = self._times
        if len(times.pts) != self._frames_written:
            log.warning("%s: %d frames written but the source lists %d timestamps; written at a constant %s fps",
                        self.path, self._frames_written, len(times.pts), self._fps)
            os.replace(self._encoded, self._video)
            return
        ends = (*times.pts[1:], times.end)
        with av.open(str(self._encoded)) as source, av.open(str(self._video), "w") as target:
            stream = target.add_stream_from_template(source.streams.video[0])
            stream.time_base = times.time_base
            index = 0
            for packet in source.demux(source.streams.video[0]):
                if packet.dts is None:  # the empty packet that ends the stream
                    continue
                packet.stream = stream
                packet.time_base = times.time_base
                packet.pts = packet.dts = times.pts[index]
                packet.duration = ends[index] - times.pts[index]
                target.mux(packet)
                index += 1

    def _mux_audio(self) -> None:
        """Copy the video stream and the first audio stream of `audio_from` into the output, cut to the video."""
        # Copying fails when the output container cannot hold the codec (e.g. mu-law PCM in mp4): then encode AAC.
        for audio_codec in ("copy", "aac"):
            result = subprocess.run(
                [
                    imageio_ffmpeg.get_ffmpeg_exe(),
                    *("-hide_banner", "-loglevel", "error", "-nostdin", "-y"),
                    *("-i", str(self._video), "-i", str(self._audio_from)),
                    *("-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", audio_codec),
                    # Cut the audio at the video's end; never `-shortest`, which drops video frames when the audio
                    # is the shorter stream.
                    *("-t", f"{self.duration_s:.6f}"),
                    str(self._output),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if result.returncode == 0:
                return
        raise UserError(f"ffmpeg failed adding the audio of {self._audio_from} to {self.path}: "
                        f"{_ffmpeg_reason(result.stderr)}")

    def _abort(self, error: BaseException) -> None:
        """Kill ffmpeg and remove every temporary file; nothing appears at `path`."""
        self._closed = True
        self._process.kill()
        self._process.wait()
        try:
            self._process.stdin.close()
        except BrokenPipeError:  # flushing into the dead process
            pass
        self._cleanup.__exit__(type(error), error, error.__traceback__)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc is None:
            self.close()
        elif not self._closed:
            self._abort(exc)
