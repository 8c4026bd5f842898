"""`segedge eval`: mIoU, pixel accuracy and per-class IoU on a labelled folder, models side by side.

ONNX models run on the runtime install alone (the Predictor); only `--torch` needs PyTorch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.table import Table

from runtimes.backends import RuntimeSpec
from runtimes.errors import UsageError

from segedge.cli.app import app, err, out, print_json, probe_if_isolated, require_torch, with_progress
from segedge.cli.options import (Address, CardOptions, Engine, EngineOpt, Isolate, Json, Overwrite, Samples,
                                 ThreadsPerWorker, Weights, Workers, card_options, ray_cluster, runtime_options)

if TYPE_CHECKING:
    from segedge.report.samples import SampleBook


@app.command("eval")
@card_options
@runtime_options(provider=False)
def eval_command(
    models: Optional[list[Path]] = typer.Argument(None, help="ONNX models to score (e.g. the fp32, fp16 and int8 files)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Labelled folder: VOC layout (JPEGImages/ + SegmentationClass/, the val split) or images/ + masks/ (default, for models trained with --weights demo: their held-out split)."),
    torch_model: Optional[str] = typer.Option(None, "--torch", help="Also score this zoo model in PyTorch, built as a listed ONNX file's card says."),
    weights: Weights = None,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score only the first N images."),
    as_json: Json = False,
    isolate: Isolate = False,
    overwrite: Overwrite = False,
    html: Optional[Path] = typer.Option(None, "--html", help="Also write DIR/index.html: the models side by side with "
                                        "confusion matrices, IoU bars and sample images (opens from disk)."),
    samples: Samples = 4,
    engine: EngineOpt = Engine.local,
    address: Address = None,
    workers: Workers = None,
    threads_per_worker: ThreadsPerWorker = None,
    card: CardOptions = CardOptions(),
    spec: RuntimeSpec = RuntimeSpec(),
) -> None:
    """Score segmentation models on image/mask pairs (index or palette PNG masks; 255 is ignored)."""
    from segedge.evaluate import EvalRequest, run_eval

    cluster = ray_cluster(engine, address, workers, threads_per_worker, spec.threads)
    if cluster is not None and html is not None:
        raise UsageError("--html keeps each model's sample label maps in this process: run it with --engine local")
    request = EvalRequest(data=data, models=tuple(models or ()), torch_model=torch_model, weights=weights,
                          limit=limit, card_overrides=card.overrides(), spec=spec)
    if torch_model is not None:
        require_torch("eval --torch")
    for path in request.models:
        probe_if_isolated(isolate, path)
    if html is not None:  # the page never replaces a file segedge did not write (runtimes.guards.outputs)
        from runtimes.guards.outputs import check_outputs, inputs_of

        check_outputs([html / "index.html"], inputs_of("a model scored", request.models), overwrite=overwrite)
    book = _sample_book(html, samples)
    if cluster is not None:
        from segedge.batch.ray_eval import eval_on_ray

        result = with_progress("starting Ray", lambda progress: eval_on_ray(request, cluster, progress))
    else:
        result = with_progress("evaluating", lambda progress: run_eval(request, progress, book))
    if html is not None:
        from segedge.evaluate.html import write_eval_page

        err.print(f"html: {write_eval_page(result, book, html)}", markup=False)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    if as_json:
        print_json(result)
        return
    _print_table(result)


def _sample_book(html: Path | None, samples: int) -> SampleBook | None:
    """Where run_eval keeps what the page shows; None without --html. The folder is checked before any model runs."""
    if html is None:
        return None
    from runtimes.guards.fileio import ensure_writable
    from segedge.evaluate.html import HTML
    from segedge.report.samples import SampleBook

    ensure_writable(html / HTML)
    return SampleBook(samples)


def _print_table(result) -> None:
    table = Table(title=f"accuracy on {result.data} ({result.images} images; IoU per class)", title_justify="left")
    table.add_column("model")
    for column in ("mIoU", "pixel acc", *result.classes, "s"):
        table.add_column(column, justify="right")
    best = max(a.miou for _, a in result.scores)
    for label, a in result.scores:
        per_class = [("-" if math.isnan(v) else f"{v:.3f}") for v in a.per_class_iou]
        miou = f"[bold]{a.miou:.4f}[/]" if a.miou == best else f"{a.miou:.4f}"
        cells = (per_class + ["-"] * len(result.classes))[: len(result.classes)]
        table.add_row(label, miou, f"{a.pixel_accuracy:.4f}", *cells, f"{a.seconds:.1f}")
    out.print(table)
