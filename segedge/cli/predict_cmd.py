"""`segedge predict`: label PNGs (and overlays, probabilities) for images and folders of images;
a mask video (and an overlay video) for a video file, a stream URL or a camera.

Runs on the runtime install alone: nothing here imports torch or `segedge.models`; videos need
PyAV (`segedge[video]`), imported only when a video source is given.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from runtimes.backends import RuntimeSpec
from runtimes.errors import ImageError, InputFileError, UsageError
from runtimes.predictor import Predictor

from segedge.batch.clashes import check_predict_outputs
from segedge.batch.cluster import RayCluster
from segedge.batch.folder import segment_overlapped
from segedge.batch.jobs import find_images, output_stem, segment
from segedge.batch.video import VideoPlan
from segedge.cli.app import app, err
from segedge.cli.video_source import VideoArgs, open_checked_video, run_video, video_source
from segedge.cli.options import (Address, CardOptions, Engine, EngineOpt, Isolate, Overwrite, ThreadsPerWorker, Workers,
                                 card_options, ray_cluster, runtime_options)


@app.command("predict")
@card_options
@runtime_options()
def predict_command(
    model: Path = typer.Argument(..., help="The ONNX model."),
    inputs: list[str] = typer.Argument(..., help="Images, folders of images and glob patterns ('photos/**/*.jpg', quoted); or one video file, stream URL (rtsp://, http://...) or camera index (0)."),
    output_dir: Path = typer.Option(Path("predictions"), "-o", "--output-dir", help="Where the results go (folder structure of the inputs kept)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Look for images in sub-folders too."),
    overlay: bool = typer.Option(False, "--overlay", help="Also write the image with the classes' colours blended over it."),
    proba: bool = typer.Option(False, "--proba", help="Also write class probabilities, C x H x W float32 (.npy)."),
    tile: Optional[int] = typer.Option(None, "--tile", min=1, help="Tile images larger than N x N pixels (default: the card's tile size)."),
    overlap: Optional[int] = typer.Option(None, "--overlap", min=0, help="Overlap of neighbouring tiles in pixels."),
    resize_long: Optional[int] = typer.Option(None, "--resize-long", min=1, help="Resize so that the longer side is N pixels (output resized back)."),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", min=1, help="Read images up to N pixels (Pillow's decompression-bomb limit otherwise)."),
    isolate: Isolate = False,
    overwrite: Overwrite = False,
    engine: EngineOpt = Engine.local,
    address: Address = None,
    workers: Workers = None,
    threads_per_worker: ThreadsPerWorker = None,
    frames_dir: Optional[Path] = typer.Option(None, "--frames", help="Video: write NAME_<frame>_mask.png per frame into this folder instead of a mask video."),
    every: int = typer.Option(1, "--every", min=1, help="Video: segment one frame in N."),
    fps: Optional[float] = typer.Option(None, "--fps", min=0.001, help="Video: segment at most this many frames per second of video."),
    smooth: float = typer.Option(0.0, "--smooth", min=0.0, max=0.99, help="Video: average class probabilities over frames (0 off; 0.75: a frame's weight halves in 2.4 frames)."),
    start: Optional[str] = typer.Option(None, "--start", help="Video file: begin at this time (seconds, or [HH:]MM:SS[.ms]); the outputs' times count from it, as `ffmpeg -ss` cuts."),
    duration: Optional[str] = typer.Option(None, "--duration", help="Video: segment this long a part (seconds, or [HH:]MM:SS[.ms]); a stream or camera then ends by itself."),
    card: CardOptions = CardOptions(),
    spec: RuntimeSpec = RuntimeSpec(),
) -> None:
    """Segment images: writes NAME_mask.png (palette PNG of class indices, the image's size) per image.

    A video, stream or camera gives NAME_mask.mkv (FFV1, lossless: gray values are class indices) and,
    with --overlay, NAME_overlay.mp4 at the source's frame rate, size and timestamps (docs/video.md).
    """
    video_args = VideoArgs(frames_dir, every, fps, smooth, start, duration)
    source = video_source(inputs)
    if source is None and video_args.given():
        raise UsageError("--frames, --every, --fps, --smooth, --start and --duration apply to a video, stream or camera source")
    threads = spec.threads
    cluster = ray_cluster(engine, address, workers, threads_per_worker, threads)
    overrides = {**card.overrides(), "tile_size": tile, "tile_overlap": overlap}
    runtime = {key: value for key, value in spec.predictor_keywords().items() if key != "threads"}  # per actor
    options = {**runtime, "resize_long": resize_long, "max_pixels": max_pixels,
               **{k: v for k, v in overrides.items() if v is not None}}
    if source is not None:
        if proba or cluster is not None:
            raise UsageError("--proba and --engine ray take images; a video, stream or camera runs in this process")
        plan = VideoPlan(output_dir, overlay, frames_dir, smooth)
        with open_checked_video(source, video_args, max_pixels, plan, model, overwrite) as video:
            run_video(_predictor(model, threads, isolate, options), video, plan)
        return
    paths = [Path(given) for given in inputs]
    jobs = find_images(paths, recursive)
    check_predict_outputs(model, paths, jobs, output_dir, recursive, overlay, proba, overwrite)
    predictor = _predictor(model, threads, isolate, options)
    if not predictor.card.dynamic and resize_long is None:  # which policy meets a larger image: tiles, or a resize
        err.print(f"{model}: {predictor.session.inspection.shape_constraints()}", markup=False, highlight=False,
                  soft_wrap=True)
    if cluster is not None:  # `predictor` has checked the model and options here; each actor builds its own
        _predict_on_ray(os.path.abspath(model), options, jobs, output_dir, overlay, proba, cluster)
        return
    failed = 0
    with _progress() as progress:
        task = progress.add_task("predict", total=len(jobs))

        def done(job: tuple[Path, Path], error: ImageError | None) -> None:
            nonlocal failed
            if error is not None:  # this image only: report it, go on with the others
                failed += 1
                progress.console.print(f"skipped: {' '.join(str(error).split())}", markup=False, highlight=False,
                                       soft_wrap=True)
            progress.update(task, advance=1, description=str(job[1]))

        if proba:  # probabilities stream into a memory-mapped file per image: one image at a time
            for job in jobs:
                try:
                    segment(predictor, job[0], output_stem(output_dir, job[1]), overlay, proba)
                    done(job, None)
                except ImageError as exc:
                    done(job, exc)
        else:
            segment_overlapped(predictor, jobs, output_dir, overlay, done)
    err.print(f"{len(jobs) - failed} of {len(jobs)} images segmented into {output_dir}", markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise InputFileError(f"{failed} of {len(jobs)} images could not be read (listed above)")


def _predictor(model: Path, threads: Optional[int], isolate: bool, options: dict) -> Predictor:
    """The Predictor the options describe; a warning about the file's runtime as one line."""
    with warnings.catch_warnings(record=True) as said:  # a file quantized for the other runtime: one line
        warnings.simplefilter("always")
        # ONNX Runtime's waiting threads spin only briefly, then park: decoding and encoding run beside
        # the model on the same cores (docs/video.md, Speed)
        predictor = Predictor(model, threads=threads, isolate=isolate, spinning=False, **options)
    for warning in said:
        err.print(f"warning: {warning.message}", markup=False, highlight=False, soft_wrap=True)
    return predictor


def _predict_on_ray(model: str, options: dict, jobs: list[tuple[Path, Path]], output_dir: Path, overlay: bool,
                    proba: bool, cluster: RayCluster) -> None:
    """The same jobs on a Ray Data actor pool (`segedge.batch.ray_predict`): resumable, failures in failures.jsonl."""
    from segedge.batch.ray_predict import FAILURES, ImageResult, SegmentSpec, predict_on_ray

    with _progress() as progress:
        task = progress.add_task("starting Ray", total=len(jobs))

        def report(result: ImageResult) -> None:
            if result.status == "failed":
                progress.console.print(f"skipped: {result.reason}", markup=False, highlight=False, soft_wrap=True)
            progress.update(task, advance=1, description=result.source)

        summary = predict_on_ray(SegmentSpec(model, options, overlay, proba), jobs, output_dir, cluster, report)
    failed = len(summary.failures)
    present = f"{summary.present} of them already there; " if summary.present else ""
    workers = f"{summary.workers} Ray worker{'' if summary.workers == 1 else 's'}"
    nodes = f"{summary.nodes} node{'' if summary.nodes == 1 else 's'}"
    err.print(f"{summary.total - failed} of {summary.total} images segmented into {output_dir} "
              f"({present}{workers} on {nodes})", markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise InputFileError(f"{failed} of {summary.total} images could not be read (listed in {output_dir / FAILURES})")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", style="dim"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
