"""Mask and overlay videos, written so that whatever was written is a whole, playable file.

Mask video: FFV1 (FFmpeg's lossless intra-frame codec, RFC 9043) in Matroska (.mkv), one gray
plane per frame whose values are the class indices (`gray`; `gray16le` past 256 classes). Why:
- lossless and bit-exact, so `frame.to_ndarray()` of a decoded frame *is* the label map (tested);
  H.264 in 4:2:0, even at crf 0, stores a colour mask through a YUV conversion that moves values;
- every frame a key frame: a file cut short still decodes to its last whole frame, and a seek
  lands on the exact frame;
- in every FFmpeg build (PyAV's wheels included), plays in VLC, mpv and ffplay; masks are flat
  regions, which FFV1's context model packs small (a 64 x 48 mask of 21 classes in noise: ~2 kB).
It looks nearly black in a player (class 3 is gray level 3): the overlay video is for eyes.

Overlay video: H.264 (libx264, `yuv420p`, crf 20; `yuv444p` for odd sizes, which 4:2:0 cannot
hold) in MP4, the source's size, frame rate and timestamps. `tune=zerolatency` (no B-frames, no
look-ahead) lets each frame out as it is encoded, so closing after a Ctrl-C has nothing queued.

Each file is written to a temporary beside its target and moved into place by `close()` after
the encoder is flushed and the trailer written: on a normal end, an error in the middle (a
corrupt frame, a dropped stream) or a Ctrl-C alike. Until then it is registered with
`runtimes.guards.interrupts`, so a forced exit leaves no temporary behind.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError
from ..guards.fileio import move_into_place, temporary_file
from ..guards.outputs import VIDEO_COMMENT
from .sources import require_av

MASK_VIDEO, OVERLAY_VIDEO = "_mask.mkv", "_overlay.mp4"


class VideoWriter:
    """One output video; frames are given with their source timestamps. Open it with `mask_video`/`overlay_video`."""

    def __init__(self, target: Path, *, container: str, codec: str, pix_fmt: str, source_format: str,
                 rate: Fraction, time_base: Fraction, options: dict[str, str],
                 muxer_options: dict[str, str] | None = None) -> None:
        self.target, self.frames = Path(target), 0
        self._muxer_options = muxer_options or {}
        self._av = require_av()
        self._spec = (container, codec, pix_fmt, options)
        self._source_format, self._rate, self._time_base = source_format, rate, time_base
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(temporary_file(self.target, suffix=self.target.suffix))
        self._output: Any = None
        self._stream: Any = None
        self._last_pts: int | None = None

    def write(self, pixels: np.ndarray, pts: int) -> None:
        """Encode one frame (H x W gray or H x W x 3 RGB) at `pts` (in the source's time base)."""
        if self._output is None:
            self._start(pixels.shape[1], pixels.shape[0])
        if (pixels.shape[1], pixels.shape[0]) != (self._stream.width, self._stream.height):
            raise OutputError(f"{self.target}: a frame of {pixels.shape[1]} x {pixels.shape[0]} in a video of "
                              f"{self._stream.width} x {self._stream.height} (the source changed its size)")
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=self._source_format)
        frame.pts, frame.time_base = pts, self._time_base
        self._mux(self._stream.encode(frame))
        self._last_pts = pts
        self.frames += 1

    def close(self) -> bool:
        """Flush, write the trailer and move the file into place; False (nothing written) without frames."""
        try:
            if self._output is None:
                return False
            try:
                self._mux(self._stream.encode())
                self._output.close()
            except self._av.error.FFmpegError as exc:
                raise OutputError(f"cannot write {self.target}: {exc}") from None
            finally:
                self._output = None
            move_into_place(self._tmp, self.target)
            return True
        finally:
            self._stack.close()

    def _start(self, width: int, height: int) -> None:
        container, codec, pix_fmt, options = self._spec
        if pix_fmt == "yuv420p" and (width % 2 or height % 2):
            pix_fmt = "yuv444p"  # 4:2:0 needs even sides
        try:
            self._output = self._av.open(str(self._tmp), mode="w", format=container, options=self._muxer_options)
            self._output.metadata["comment"] = VIDEO_COMMENT  # how a later run knows the file as segedge's
            stream = self._output.add_stream(codec, rate=self._rate, options=options)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.codec_context.time_base = self._time_base
            self._stream = stream
        except self._av.error.FFmpegError as exc:
            raise OutputError(f"cannot write {self.target}: {exc}") from None

    def _mux(self, packets: Any) -> None:
        try:
            self._output.mux(packets)
        except self._av.error.FFmpegError as exc:
            raise OutputError(f"cannot write {self.target}: {exc}") from None


def mask_video(target: Path, *, classes: int, rate: Fraction, time_base: Fraction) -> VideoWriter:
    """FFV1 in Matroska: each frame's gray values are its class indices (uint16 past 256 classes)."""
    wide = classes > 256
    return VideoWriter(target, container="matroska", codec="ffv1", pix_fmt="gray16le" if wide else "gray",
                       source_format="gray16le" if wide else "gray", rate=rate, time_base=time_base,
                       options={"level": "3", "slicecrc": "1"},
                       # clusters of at most a second, written out as they close: the file grows as a
                       # stream runs, instead of at the end from FFmpeg's buffers
                       muxer_options={"cluster_time_limit": "1000", "flush_packets": "1"})


def overlay_video(target: Path, *, rate: Fraction, time_base: Fraction) -> VideoWriter:
    """H.264 in MP4, for people to watch: the source's frames with the classes' colours over them."""
    return VideoWriter(target, container="mp4", codec="libx264", pix_fmt="yuv420p", source_format="rgb24",
                       rate=rate, time_base=time_base,
                       options={"crf": "20", "preset": "veryfast", "tune": "zerolatency"})


def read_mask_video(path: str | Path) -> list[np.ndarray]:
    """The label maps a mask video holds, in order (for apps and tests: the exact classes)."""
    av = require_av()
    with av.open(str(path)) as container:
        return [frame.to_ndarray() for frame in container.decode(video=0)]
