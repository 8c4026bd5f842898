"""`segedge predict`: label PNGs (and overlays, probabilities) for images and folders of images.

Runs on the runtime install alone: nothing here imports torch or `segedge.models`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from runtimes.errors import ImageError, InputFileError, UsageError
from runtimes.image import load_image
from runtimes.postprocess import labels_from_probabilities, overlay_image, palette_image, save_npy, save_png
from runtimes.predictor import Predictor
from runtimes.providers import Provider

from segedge.cli.app import app, err
from segedge.cli.options import CardOptions, Isolate, ProviderOpt, Threads, card_options


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
    threshold: float = typer.Option(0.5, "--threshold", min=0, max=1, help="Foreground threshold of a one-channel model."),
    provider: ProviderOpt = Provider.cpu,
    threads: Threads = None,
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", min=1, help="Read images up to N pixels (Pillow's decompression-bomb limit otherwise)."),
    isolate: Isolate = False,
    card: CardOptions = CardOptions(),
) -> None:
    """Segment images: writes NAME_mask.png (palette PNG of class indices, the image's size) per image."""
    jobs = find_images(inputs, recursive)
    overrides = {**card.overrides(), "tile_size": tile, "tile_overlap": overlap}
    predictor = Predictor(model, provider, threads, resize_long=resize_long, threshold=threshold, max_pixels=max_pixels,
                          isolate=isolate, **{k: v for k, v in overrides.items() if v is not None})
    failed = 0
    # Pillow only warns between its decompression-bomb limit and twice that (89-179 MP): here that
    # is a refused image too, unless --max-pixels raised the limit.
    with warnings.catch_warnings(), _progress() as progress:
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        task = progress.add_task("predict", total=len(jobs))
        for source, relative in jobs:
            progress.update(task, description=str(relative))
            try:
                segment(predictor, source, output_dir / relative.parent / relative.stem, overlay, proba)
            except ImageError as exc:  # this image only: report it, go on with the others
                failed += 1
                progress.console.print(f"skipped: {' '.join(str(exc).split())}", markup=False, highlight=False, soft_wrap=True)
            progress.advance(task)
    err.print(f"{len(jobs) - failed} of {len(jobs)} images segmented into {output_dir}", markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise InputFileError(f"{failed} of {len(jobs)} images could not be read (listed above)")


def segment(predictor: Predictor, source: Path, stem: Path, overlay: bool, proba: bool) -> None:
    """Segment one image file; write STEM_mask.png, and STEM_overlay.png / STEM_proba.npy if asked."""
    image = load_image(source, max_pixels=predictor.max_pixels)
    colors = predictor.card.colors()
    if proba:
        probabilities = predictor.predict_proba(image)
        labels = labels_from_probabilities(probabilities, predictor.card.output_kind, predictor.threshold)  # no second run
        save_npy(probabilities, f"{stem}_proba.npy")
    else:
        labels = predictor.predict(image)
    save_png(palette_image(labels, colors), f"{stem}_mask.png")
    if overlay:
        save_png(overlay_image(image, labels, colors), f"{stem}_overlay.png")


def find_images(inputs: list[Path], recursive: bool) -> list[tuple[Path, Path]]:
    """(file, output path relative to the output folder) for every image named or found.

    A folder's images keep their path below the folder. Hidden files are skipped, so are files
    whose extension no Pillow decoder claims; a file named explicitly is always tried.
    """
    extensions = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    jobs: list[tuple[Path, Path]] = []
    for given in inputs:
        if given.is_dir():
            found = given.rglob("*") if recursive else given.glob("*")
            files = sorted(p for p in found if p.is_file() and p.suffix.lower() in extensions and not _hidden(p, given))
            jobs.extend((p, p.relative_to(given)) for p in files)
        else:
            jobs.append((given, Path(given.name)))
    if not jobs:
        hint = "" if recursive else " (add --recursive?)"
        raise UsageError(f"no images found in {', '.join(str(p) for p in inputs)}{hint}")
    seen: dict[Path, Path] = {}
    for source, relative in jobs:
        key = relative.with_suffix("")
        if key in seen and seen[key] != source:
            raise UsageError(f"{seen[key]} and {source} would write the same output {key}_mask.png; predict them separately")
        seen[key] = source
    return jobs


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", style="dim"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
