"""Frames from a video file, a stream URL or a camera, decoded by FFmpeg through PyAV.

    with Video("clip.mp4", every=2) as video:
        for frame in video.frames():     # Frame(index, pts, time_base, rgb: H x W x 3 uint8)
            ...

`start` and `duration` (seconds) cut a part out of a file, as `ffmpeg -ss START -t DURATION` does:
FFmpeg seeks to the key frame before `start` and the frames before it are decoded and left out;
the kept frames' timestamps then count from the first of them (the part is a clip of its own),
while their indices stay the source's. On a live source `duration` ends the run after that many
seconds of frames (a stream has no start to seek to).

A file is read as fast as its reader takes frames (a slow reader holds the decoder back). A live
source (a stream URL, a camera) is read as it comes, in a thread of its own, into a buffer of
`LIVE_BUFFER` frames: when the reader falls behind, the oldest waiting frame is dropped
(`Video.dropped` counts them), so the reader always gets a recent frame and memory stays bounded.

PyAV (`segedge[video]`) is imported on first use: `import runtimes` works without it.
Each frame is held to the pixel limit of images (`runtimes.imaging.image.pixel_limit`), checked from the
stream's header before the first frame is decoded and again for every frame (a stream may change
its size). FFmpeg's failures become one `VideoError` line naming the source.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError, VideoError
from ..imaging.image import pixel_limit

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts", ".flv", ".wmv",
    ".ogv", ".3gp", ".y4m", ".nut", ".mxf",  # not .gif: Pillow reads it, as an image (its first frame)
})
FILES_OVER_HTTP = VIDEO_EXTENSIONS - {".ts", ".m2ts", ".mts", ".flv"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
LIVE_BUFFER = 2  # frames a live source holds for a reader that has fallen behind
OPEN_TIMEOUT_S, READ_TIMEOUT_S = 10.0, 5.0  # a stream that stalls this long has dropped
LIVE_PROBE_US = 500_000
INSTALL_HINT = "pip install 'segedge[video]'"


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the source (before subsampling), timestamp and RGB pixels."""

    index: int
    pts: int
    time_base: Fraction
    rgb: np.ndarray

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


def is_video_source(source: str) -> bool:
    """A stream URL, a camera index ("0"), or a file whose extension names a video container."""
    return source.isdigit() or source.lower().startswith(STREAM_SCHEMES) or Path(source).suffix.lower() in VIDEO_EXTENSIONS


def is_live(source: str) -> bool:
    """Frames that come at their own pace (a camera or a stream URL), not at the reader's.

    An http(s) URL of a file (its path ends in .mp4, .mkv, .webm, ...) is read like a file; one of a
    live container (.ts, .m3u8, .flv, or no extension) like a camera.
    """
    lowered = source.lower()
    if lowered.startswith(("http://", "https://")):
        return Path(lowered.split("?", 1)[0]).suffix not in FILES_OVER_HTTP
    return source.isdigit() or lowered.startswith(STREAM_SCHEMES)


def require_av() -> Any:
    """PyAV, or one UsageError line that says how to install it."""
    try:
        import av
    except ImportError:
        raise UsageError(f"video and streams need PyAV: {INSTALL_HINT}") from None
    return av


class Video:
    """An open video source. `every` keeps one frame in N; `fps` keeps frames at most that often;
    `start` and `duration` (seconds) keep a part of it (the module's docstring)."""

    def __init__(self, source: str, *, every: int = 1, fps: float | None = None, start: float | None = None,
                 duration: float | None = None, max_pixels: int | None = None) -> None:
        if every < 1:
            raise UsageError(f"every must be >= 1, got {every}")
        if fps is not None and fps <= 0:
            raise UsageError(f"fps must be > 0, got {fps}")
        if fps is not None and every != 1:
            raise UsageError("give --every or --fps, not both")
        if start is not None and start < 0:
            raise UsageError(f"start must be >= 0 s, got {start}")
        if duration is not None and duration <= 0:
            raise UsageError(f"duration must be > 0 s, got {duration}")
        self.source, self.every, self.fps, self.live = source, every, fps, is_live(source)
        if start and self.live:
            raise UsageError(f"--start needs a video file: {source} is live, read from its newest frame on")
        self.start, self.duration = start or 0.0, duration
        self.limit = pixel_limit(max_pixels)
        self.dropped = 0
        self._reader: threading.Thread | None = None  # a live source's decoding thread
        self._stop_reading = threading.Event()
        self._av = require_av()
        self._container = self._open()
        try:
            streams = self._container.streams
            if not streams.video:
                raise VideoError(f"{source}: holds no video stream")
            self._stream = streams.video[0]
            self.has_audio = bool(streams.audio)
            self.frame_count: int | None = int(self._stream.frames or 0) or None  # as the container says, if it does
            context = self._stream.codec_context
            if context is None:
                raise VideoError(f"{source}: its video codec is not one FFmpeg can decode")
            self.width, self.height = int(context.width), int(context.height)
            self._check_size(self.width, self.height)
            self._stream.thread_type = "AUTO"  # FFmpeg's own frame/slice threads for the decoder
            self.rate: Fraction = self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
            self.time_base: Fraction = self._stream.time_base or Fraction(1, 1000)
            length = self._duration()
            if self.start and length is not None and self.start >= length:
                raise UsageError(f"--start {self.start:g} s lies past the end of {source} ({length:.2f} s)")
        except BaseException:
            self._container.close()
            raise

    @property
    def output_rate(self) -> Fraction:
        """The frame rate of what `frames()` yields (the source's, less what subsampling leaves out)."""
        if self.fps is not None:
            return min(self.rate, Fraction(self.fps).limit_denominator(1001))
        return self.rate / self.every

    @property
    def name(self) -> str:
        """A file-name stem for the outputs: the file's, `camera0`, or the URL's last path part."""
        if self.source.isdigit():
            return f"camera{self.source}"
        if is_live(self.source):
            stem = Path(self.source.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]).stem
            host = self.source.split("://", 1)[-1]
            return stem if stem and "/" in host else "stream"
        return Path(self.source).stem

    def frames(self) -> Iterator[Frame]:
        """The kept frames, in order; a live source's through its bounded buffer (late ones dropped)."""
        decoded = self._decoded()
        return self._newest(decoded) if self.live else decoded

    def close(self) -> None:
        self._stop_reading.set()
        if self._reader is not None:
            self._reader.join(timeout=0.5)
            if self._reader.is_alive():  # blocked in a network read: closing under it would crash FFmpeg
                return  # a daemon thread; the read times out (READ_TIMEOUT_S) and the process may end
        self._container.close()

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------------
    def _open(self) -> Any:
        av = self._av
        target, fmt = self.source, None
        # A live source is probed for half a second, not FFmpeg's default 5 s of frames, before the first one.
        probing = {"analyzeduration": str(LIVE_PROBE_US), "fflags": "nobuffer"} if self.live else {}
        if self.source.isdigit():
            target, fmt = _camera(int(self.source))
        elif not is_live(self.source) and not Path(self.source).is_file():
            raise VideoError(f"video file not found: {self.source}")
        try:
            return av.open(target, format=fmt, options=probing, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S))
        except av.error.FFmpegError as exc:
            what = f"camera {self.source} ({target}, {fmt})" if fmt else self.source
            raise VideoError(f"{what}: cannot open the {'camera' if fmt else 'video'} ({_reason(exc)})") from None

    def _decoded(self) -> Iterator[Frame]:
        av = self._av
        kept, next_time, last_pts = 0, 0.0, None
        origin = self._stream.start_time or 0  # the file's time 0, in time_base units
        index = -1 if not self._seek(origin) else None  # after a seek: counted from the first frame's time
        first: tuple[int, int] | None = None  # (index, pts) of the first frame at or after the start
        try:
            for packet in self._container.demux(self._stream):
                for frame in packet.decode():
                    index = _index(frame, origin, self.rate, self.time_base) if index is None else index + 1
                    pts = _pts(frame, index, self.rate, self.time_base, last_pts)
                    last_pts = pts
                    if self.live and first is None:
                        origin = pts  # a stream's timestamps start anywhere: its duration counts from its first frame
                    seconds = float((pts - origin) * self.time_base)
                    if self.start and seconds < self.start - 1e-6:  # without a start every frame counts,
                        continue  # also one an edit list places before the file's time 0
                    if first is None:
                        first = (index, pts)
                    if self.duration is not None and seconds >= self.start + self.duration - 1e-6:
                        return  # the part asked for is whole: neither a truncation nor a drop
                    moment = float(pts * self.time_base)
                    if not self._keep(index - first[0], moment, next_time):
                        continue
                    self._check_size(frame.width, frame.height)
                    next_time = moment + (1.0 / self.fps if self.fps else 0.0)
                    kept += 1
                    shifted = pts - first[1] if self.start else pts  # a part cut out starts at time 0
                    yield Frame(index, shifted, self.time_base, frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise VideoError(f"{self.source}: {'the stream dropped' if self.live else 'cannot decode the video'} "
                             f"after {kept} frame{'' if kept == 1 else 's'} ({_reason(exc)})") from None
        if index is None or index < 0:
            raise VideoError(f"{self.source}: no frame could be decoded")
        if first is None:
            raise VideoError(f"{self.source}: no frame at or after --start {self.start:g} s")
        if self.live:  # a camera or a live stream runs until Ctrl-C: its end is a drop
            raise VideoError(f"{self.source}: the stream ended or dropped after {kept} frame{'' if kept == 1 else 's'}")
        if last_pts is not None:
            self._check_whole(float((last_pts - origin) * self.time_base), kept)

    def _seek(self, origin: int) -> bool:
        """Seek to the key frame at or before `start`; False where there is nothing to seek (or the
        container cannot: its frames before `start` are then decoded and left out)."""
        if not self.start:
            return False
        try:
            self._container.seek(origin + int(self.start / self.time_base), stream=self._stream, backward=True)
        except self._av.error.FFmpegError:
            return False
        return True

    def _check_whole(self, last_time: float, kept: int) -> None:
        """A file cut short decodes without an error up to the cut: its header's duration tells."""
        duration = self._duration()
        frame = 1.0 / float(self.rate)
        if duration is not None and last_time + frame < duration - 2 * frame - 0.05:
            raise VideoError(f"{self.source}: truncated: its frames end at {last_time + frame:.2f} s of the "
                             f"{duration:.2f} s its header gives ({kept} frame{'' if kept == 1 else 's'} read)")

    def _duration(self) -> float | None:
        """The video's duration in seconds as the container says (the whole file's when no audio can lengthen it)."""
        if self._stream.duration:
            return float(self._stream.duration * self.time_base)
        if self._container.duration and not self.has_audio:
            return self._container.duration / 1_000_000
        return None

    def _newest(self, decoded: Iterator[Frame]) -> Iterator[Frame]:
        """Decode in a thread as frames come; hand over the newest `LIVE_BUFFER`, dropping older ones."""
        buffer: deque[Frame] = deque()
        ready = threading.Condition()
        ended: list[BaseException | None] = []
        stop = self._stop_reading

        def read() -> None:
            try:
                for frame in decoded:
                    with ready:
                        if len(buffer) == LIVE_BUFFER:
                            buffer.popleft()
                            self.dropped += 1
                        buffer.append(frame)
                        ready.notify()
                    if stop.is_set():
                        return
                result: BaseException | None = None
            except BaseException as exc:  # noqa: BLE001 - raised again in the reader's thread
                result = exc
            with ready:
                ended.append(result)
                ready.notify()

        self._reader = threading.Thread(target=read, name="segedge-live-decode", daemon=True)
        self._reader.start()
        try:
            while True:
                with ready:
                    while not buffer and not ended:
                        ready.wait(timeout=0.1)
                    if buffer:
                        frame = buffer.popleft()
                    elif ended[0] is not None:
                        raise ended[0]
                    else:
                        return
                yield frame
        finally:
            stop.set()

    def _keep(self, counted: int, time: float, next_time: float) -> bool:
        """`counted`: frames since the first one kept (the first at or after the start)."""
        if self.fps is not None:
            return time >= next_time - 1e-6
        return counted % self.every == 0

    def _check_size(self, width: int, height: int) -> None:
        if width * height > self.limit:
            raise VideoError(f"{self.source}: frames of {width} x {height} are larger than the decompression-bomb "
                             f"limit of {int(self.limit)} pixels; pass max_pixels (--max-pixels) to read them anyway")


def _camera(index: int) -> tuple[str, str]:
    """FFmpeg's device name and input format for camera `index` on this system."""
    if sys.platform.startswith("linux"):
        return f"/dev/video{index}", "v4l2"
    if sys.platform == "darwin":
        return str(index), "avfoundation"
    raise UsageError("a camera index works on Linux (v4l2) and macOS (avfoundation); give the camera's stream URL instead")


def _pts(frame: Any, index: int, rate: Fraction, time_base: Fraction, last: int | None) -> int:
    """The frame's timestamp in `time_base`, made from its index where the source has none, and
    strictly increasing (encoders refuse a timestamp that goes back)."""
    pts = frame.pts if frame.pts is not None else int(index / rate / time_base)
    return pts if last is None or pts > last else last + 1


def _index(frame: Any, origin: int, rate: Fraction, time_base: Fraction) -> int:
    """A frame's index in the source, from its timestamp (after a seek: exact at a constant frame rate)."""
    if frame.pts is None:
        return 0
    return max(0, round((frame.pts - origin) * time_base * rate))


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__
