"""`segedge predict` on a video file, a stream URL or a camera: the command line's side.

Which input is a video source, the checks before any work (PyAV installed, the source opens, the
outputs clash with nothing), the progress line and the closing lines: what was written, how many
late frames a live source dropped, and that a Ctrl-C or a failure mid-video kept what was written.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runtimes.errors import SegedgeError, UsageError
from runtimes.guards.outputs import check_outputs
from runtimes.predictor import Predictor
from runtimes.stream.sources import Frame, Video, is_live, is_video_source

from segedge.batch.jobs import MASK, OVERLAY
from segedge.batch.video import VideoPlan, VideoSummary, predict_video, video_outputs
from segedge.cli.app import err


@dataclass(frozen=True)
class VideoArgs:
    frames_dir: Optional[Path]
    every: int
    fps: Optional[float]
    smooth: float
    start: Optional[str] = None
    duration: Optional[str] = None

    def given(self) -> bool:
        return (self.frames_dir is not None or self.every != 1 or self.fps is not None or self.smooth != 0.0
                or self.start is not None or self.duration is not None)


def seconds(text: str | None, option: str) -> float | None:
    """A time as FFmpeg's options take it: seconds (`90`, `1.5`) or `[HH:]MM:SS[.fraction]` (`1:30`)."""
    if text is None:
        return None
    mistake = UsageError(f"{option} takes seconds (90, 1.5) or [HH:]MM:SS[.ms] (1:30), got {text!r}")
    parts = text.strip().split(":")
    if len(parts) > 3 or any(not part or part.strip() != part for part in parts):
        raise mistake
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise mistake from None
    if not all(math.isfinite(value) and value >= 0 for value in values) or any(value >= 60 for value in values[1:]):
        raise mistake
    total = 0.0
    for value in values:
        total = total * 60 + value
    return total


def video_source(inputs: list[str]) -> str | None:
    """The one video, stream or camera among `inputs`, or None when they are images and folders."""
    videos = [given for given in inputs if is_video_source(given) and not Path(given).is_dir()]
    if not videos:
        return None
    if len(inputs) > 1:
        raise UsageError(f"a video, stream or camera is predicted on its own; got {len(inputs)} inputs "
                         f"({', '.join(inputs)})")
    return videos[0]


@contextlib.contextmanager
def open_checked_video(source: str, args: VideoArgs, max_pixels: int | None, plan: VideoPlan, model: Path,
                       overwrite: bool) -> Iterator[Video]:
    """The opened source, once its outputs are known not to clash with the model, the video or a user's file."""
    with Video(source, every=args.every, fps=args.fps, start=seconds(args.start, "--start"),
               duration=seconds(args.duration, "--duration"), max_pixels=max_pixels) as video:
        inputs = [("the model", model)] + ([] if is_live(source) else [("the input video", Path(source))])
        check_outputs(video_outputs(plan, video.name) + _frames_there(plan, video.name), inputs, overwrite=overwrite)
        yield video


def run_video(predictor: Predictor, video: Video, plan: VideoPlan) -> None:
    """Segment the video with a progress line; say what was written however it ends."""
    if video.has_audio:
        _say("note: the audio track is dropped (the outputs are video only)")
    summary = VideoSummary()
    total = None if video.live else _expected_frames(video)
    try:
        with _progress() as progress:
            task = progress.add_task(video.name, total=total)

            def done(frame: Frame) -> None:
                progress.update(task, advance=1, description=f"{video.name} {frame.time:.2f} s")

            predict_video(predictor, video, plan, summary, done)
    except KeyboardInterrupt:  # how a camera run ends: what was written is whole and in place
        _say(f"stopped; {summary.frames} frame{'' if summary.frames == 1 else 's'} segmented into {_written(summary, plan)}")
        raise
    except SegedgeError as exc:  # one line: the failure, and what was kept
        if not summary.frames:
            raise
        raise type(exc)(f"{exc}; kept {_written(summary, plan)}") from None
    _say(f"{summary.frames} frame{'' if summary.frames == 1 else 's'} segmented into {_written(summary, plan)}"
         + (f"; {video.dropped} late frames dropped" if video.dropped else ""))


def _written(summary: VideoSummary, plan: VideoPlan) -> str:
    if plan.frames_dir is not None:
        return f"{summary.frames} frame PNGs in {plan.frames_dir}"
    files = ", ".join(str(path) for path in summary.written) or "nothing"
    return f"{files} ({summary.frames} frames)"


def _frames_there(plan: VideoPlan, name: str) -> list[Path]:
    """PNGs of an earlier run's frames that this run may write over (a user's own files are refused)."""
    if plan.frames_dir is None or not plan.frames_dir.is_dir():
        return []
    endings = (MASK, OVERLAY) if plan.overlay else (MASK,)
    return sorted(p for ending in endings for p in plan.frames_dir.glob(f"{name}_*{ending}"))


def _expected_frames(video: Video) -> int | None:
    if not video.frame_count or video.fps is not None or video.start or video.duration is not None:
        return None
    return -(-video.frame_count // video.every)


def _say(message: str) -> None:
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}", style="dim"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True)
