"""`segedge predict` on a video file, a stream URL or a camera: a mask video (or PNGs per frame).

Decoding (`runtimes.stream.sources`), the Predictor's stages (`runtimes.stream.labelling`) and
this module's encoding all run at once. The outputs are closed and moved into place however the
run ends: at the end of the source, on an error in the middle (a corrupt frame, a dropped stream:
the frames before it are a finalised, playable file) or on Ctrl-C (how a camera run ends).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtimes.imaging.mask_files import save_png
from runtimes.imaging.postprocess import overlay_image, palette_image
from runtimes.predictor import Predictor
from runtimes.stream.labelling import label_stream
from runtimes.stream.sources import Frame, Video
from runtimes.stream.writers import MASK_VIDEO, OVERLAY_VIDEO, VideoWriter, mask_video, overlay_video

from segedge.batch.jobs import MASK, OVERLAY


@dataclass(frozen=True)
class VideoPlan:
    """What to write: videos into `output_dir`, or, with `frames_dir`, PNGs per frame there."""

    output_dir: Path
    overlay: bool = False
    frames_dir: Path | None = None
    smoothing: float = 0.0


@dataclass
class VideoSummary:
    frames: int = 0
    written: list[Path] = field(default_factory=list)


def video_outputs(plan: VideoPlan, name: str) -> list[Path]:
    """The videos a run writes (none with `frames_dir`: its PNGs are named per frame as they come)."""
    if plan.frames_dir is not None:
        return []
    return [plan.output_dir / f"{name}{MASK_VIDEO}"] + [plan.output_dir / f"{name}{OVERLAY_VIDEO}"] * plan.overlay


def frame_stem(plan: VideoPlan, name: str, frame: Frame) -> Path:
    """FRAMES_DIR/NAME_000123 for the source's frame 123 (before subsampling)."""
    assert plan.frames_dir is not None
    return plan.frames_dir / f"{name}_{frame.index:06d}"


def predict_video(predictor: Predictor, video: Video, plan: VideoPlan, summary: VideoSummary,
                  done: Callable[[Frame], None]) -> None:
    """Segment the kept frames of `video` into `summary`'s files; call `done(frame)` after each is written.

    `summary` says what was written also when this raises (an error mid-video, a Ctrl-C)."""
    writers = _writers(predictor, video, plan)
    colors = predictor.card.colors()
    depth = 1 if video.live else 2  # a live source: as little latency between the camera and the mask as overlap allows
    try:
        for item in label_stream(predictor, ((frame, frame.rgb) for frame in video.frames()),
                                 smoothing=plan.smoothing, depth=depth):
            frame: Frame = item.tag
            assert item.labels is not None
            if plan.frames_dir is not None:
                stem = frame_stem(plan, video.name, frame)
                save_png(palette_image(item.labels, colors), f"{stem}{MASK}")
                if plan.overlay:
                    save_png(overlay_image(frame.rgb, item.labels, colors), f"{stem}{OVERLAY}")
            else:
                writers[0].write(item.labels, frame.pts)
                if plan.overlay:
                    writers[1].write(np.asarray(overlay_image(frame.rgb, item.labels, colors)), frame.pts)
            summary.frames += 1
            done(frame)
    finally:
        _close(writers, summary)


def _writers(predictor: Predictor, video: Video, plan: VideoPlan) -> list[VideoWriter]:
    paths = video_outputs(plan, video.name)
    if not paths:
        return []
    rate, time_base = video.output_rate, video.time_base
    writers = [mask_video(paths[0], classes=max(predictor.card.num_classes, 2), rate=rate, time_base=time_base)]
    if plan.overlay:
        writers.append(overlay_video(paths[1], rate=rate, time_base=time_base))
    return writers


def _close(writers: list[VideoWriter], summary: VideoSummary) -> None:
    """Finalise every writer, even when one fails (its error is raised once the others are closed)."""
    failure: BaseException | None = None
    for writer in writers:
        try:
            if writer.close():
                summary.written.append(writer.target)
        except BaseException as exc:  # noqa: BLE001 - the others are still closed; raised below
            failure = failure or exc
    if failure is not None:
        raise failure
