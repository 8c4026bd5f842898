"""`segedge predict`: label PNGs (and overlays, probabilities) for images and folders of images.

Runs on the runtime install alone: nothing here imports torch or `segedge.models`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from runtimes.errors import ImageError, InputFileError
from runtimes.predictor import Predictor
from runtimes.providers import Provider

from segedge.batch.clashes import check_predict_outputs
from segedge.batch.cluster import RayCluster
from segedge.batch.jobs import find_images, output_stem, segment
from segedge.cli.app import app, err
from segedge.cli.options import (Address, CardOptions, Engine, EngineOpt, Isolate, OpenvinoHint, Overwrite, ProviderOpt,
                                 RuntimeOpt, Threads, ThreadsPerWorker, Workers, card_options, ray_cluster)


@app.command("predict")
@card_options
def predict_command(
    model: Path = typer.Argument(..., help="The ONNX model."),
    inputs: list[Path] = typer.Argument(..., help="Images and folders of images."),
    output_dir: Path = typer.Option(Path("predictions"), "-o", "--output-dir", help="Where the results go (folder structure of the inputs kept)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Look for images in sub-folders too."),
    overlay: bool = typer.Option(False, "--overlay", help="Also write the image with the classes' colours blended over it."),
    proba: bool = typer.Option(False, "--proba", help="Also write class probabilities, C x H x W float32 (.npy)."),
    tile: Optional[int] = typer.Option(None, "--tile", min=1, help="Tile images larger than N x N pixels (default: the card's tile size)."),
    overlap: Optional[int] = typer.Option(None, "--overlap", min=0, help="Overlap of neighbouring tiles in pixels."),
    resize_long: Optional[int] = typer.Option(None, "--resize-long", min=1, help="Resize so that the longer side is N pixels (output resized back)."),
    provider: ProviderOpt = Provider.cpu,
    runtime: RuntimeOpt = None,
    openvino_hint: OpenvinoHint = None,
    threads: Threads = None,
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", min=1, help="Read images up to N pixels (Pillow's decompression-bomb limit otherwise)."),
    isolate: Isolate = False,
    overwrite: Overwrite = False,
    engine: EngineOpt = Engine.local,
    address: Address = None,
    workers: Workers = None,
    threads_per_worker: ThreadsPerWorker = None,
    card: CardOptions = CardOptions(),
) -> None:
    """Segment images: writes NAME_mask.png (palette PNG of class indices, the image's size) per image."""
    cluster = ray_cluster(engine, address, workers, threads_per_worker, threads)
    jobs = find_images(inputs, recursive)
    check_predict_outputs(model, inputs, jobs, output_dir, recursive, overlay, proba, overwrite)
    overrides = {**card.overrides(), "tile_size": tile, "tile_overlap": overlap}
    options = {"providers": provider, "resize_long": resize_long, "max_pixels": max_pixels,
               "runtime": runtime, "openvino_hint": openvino_hint,
               **{k: v for k, v in overrides.items() if v is not None}}
    with warnings.catch_warnings(record=True) as said:  # a file quantized for the other runtime: one line
        warnings.simplefilter("always")
        predictor = Predictor(model, threads=threads, isolate=isolate, **options)
    for warning in said:
        err.print(f"warning: {warning.message}", markup=False, highlight=False, soft_wrap=True)
    if cluster is not None:  # `predictor` has checked the model and options here; each actor builds its own
        _predict_on_ray(os.path.abspath(model), options, jobs, output_dir, overlay, proba, cluster)
        return
    failed = 0
    with _progress() as progress:
        task = progress.add_task("predict", total=len(jobs))
        for source, relative in jobs:
            progress.update(task, description=str(relative))
            try:
                segment(predictor, source, output_stem(output_dir, relative), overlay, proba)
            except ImageError as exc:  # this image only: report it, go on with the others
                failed += 1
                progress.console.print(f"skipped: {' '.join(str(exc).split())}", markup=False, highlight=False, soft_wrap=True)
            progress.advance(task)
    err.print(f"{len(jobs) - failed} of {len(jobs)} images segmented into {output_dir}", markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise InputFileError(f"{failed} of {len(jobs)} images could not be read (listed above)")


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
