"""`segedge eval`: mIoU, pixel accuracy and per-class IoU on a labelled folder, models side by side.

ONNX models run on the runtime install alone (the Predictor); only `--torch` needs PyTorch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.table import Table

from runtimes.errors import UsageError

from .app import app, err, isolate_option, out, probe_if_isolated, require_torch


@app.command("eval")
def eval_command(
    models: list[Path] | None = typer.Argument(None, help="ONNX models to score (e.g. the fp32, fp16 and int8 files)."),
    data: Path = typer.Option(..., "--data", help="Labelled folder: VOC layout (JPEGImages/ + SegmentationClass/, the val split) or images/ + masks/."),
    torch_model: str | None = typer.Option(None, "--torch", help="Also score this zoo model in PyTorch, built as a listed ONNX file's card says."),
    weights: Path | None = typer.Option(None, "--weights", help="Checkpoint for --torch."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Score only the first N images."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="ONNX Runtime threads (default: usable CPUs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON on stdout."),
    isolate: bool = isolate_option(),
) -> None:
    """Score segmentation models on image/mask pairs (index or palette PNG masks; 255 is ignored)."""
    from ..evaluate import dataset_pairs, evaluate, onnx_labeller

    if not models and torch_model is None:
        raise UsageError("give at least one ONNX model, or --torch NAME")
    if weights is not None and torch_model is None:
        raise UsageError("--weights goes with --torch NAME")
    pairs = dataset_pairs(data, limit)
    for path in models or []:
        probe_if_isolated(isolate, path)
    scored, cards = [], []
    with err.status("evaluating") as status:
        for path in models or []:
            status.update(f"evaluating {path} on {len(pairs)} images")
            labeller, card = onnx_labeller(path, threads)
            cards.append(card)
            scored.append((f"{path.name} ({card.precision})", evaluate(path.name, labeller, pairs, _classes(card))))
        if torch_model is not None:
            status.update(f"evaluating {torch_model} (PyTorch) on {len(pairs)} images")
            labeller, card = _torch_labeller(torch_model, weights, cards)
            cards.append(card)
            scored.append((f"{torch_model} (PyTorch)", evaluate(torch_model, labeller, pairs, _classes(card))))
    if as_json:
        out.print_json(json.dumps({"data": str(data), "images": len(pairs), "classes": list(cards[0].classes),
                                   "models": [a.to_dict() for _, a in scored]}))
        return
    _print_table(data, scored, cards[0].classes)


def _classes(card) -> int:
    return max(2, card.num_classes)


def _torch_labeller(name: str, weights: Path | None, cards: list):
    """A zoo model in PyTorch, built with the builder keywords a listed ONNX file's card recorded."""
    require_torch("eval --torch")
    from exporters.checkpoint import fit_state_dict, load_state_dict

    from ..evaluate import torch_labeller
    from ..sources import build

    recorded = next((c for c in cards if c.source == name), None)
    built = build(name, options=recorded.build_kwargs if recorded else None)
    if weights is not None:
        for note in fit_state_dict(built.module, load_state_dict(weights), built.card.name):
            err.print(f"note: {note}")
    card = recorded or built.card
    return torch_labeller(built.module.eval(), card), card


def _print_table(data: Path, scored: list, classes: tuple[str, ...]) -> None:
    images = scored[0][1].images
    table = Table(title=f"accuracy on {data} ({images} images; IoU per class)", title_justify="left")
    table.add_column("model")
    for column in ("mIoU", "pixel acc", *classes, "s"):
        table.add_column(column, justify="right")
    best = max(a.miou for _, a in scored)
    for label, a in scored:
        per_class = [("-" if math.isnan(v) else f"{v:.3f}") for v in a.per_class_iou]
        miou = f"[bold]{a.miou:.4f}[/]" if a.miou == best else f"{a.miou:.4f}"
        cells = (per_class + ["-"] * len(classes))[: len(classes)]
        table.add_row(label, miou, f"{a.pixel_accuracy:.4f}", *cells, f"{a.seconds:.1f}")
    out.print(table)
