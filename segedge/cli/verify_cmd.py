"""`segedge verify`: parity of an ONNX model against PyTorch or against another ONNX model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runtimes.checks import PRESETS, Preset
from runtimes.errors import CardError, ParityError
from runtimes.providers import Provider

from .app import app, err, isolate_option, out, parse_sizes, probe_if_isolated, require_torch


@app.command("verify")
def verify_command(
    model: Path = typer.Argument(..., help="The ONNX model to check."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Compare against this ONNX model (e.g. the fp32 export) instead of PyTorch."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint for the PyTorch reference rebuilt from the card."),
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Comma-separated HxW sizes (default: the export size and a non-square one)."),
    provider: Provider = typer.Option(Provider.cpu, "--provider", help="Execution provider for the model under test."),
    preset: Optional[Preset] = typer.Option(None, "--preset", help="Tolerance preset (default: the card's precision)."),
    atol: Optional[float] = typer.Option(None, "--atol", min=0, help="Absolute tolerance on logits (overrides the preset)."),
    rtol: Optional[float] = typer.Option(None, "--rtol", min=0, help="Tolerance relative to the logits' range (overrides the preset)."),
    min_agreement: Optional[float] = typer.Option(None, "--min-agreement", min=0, max=1, help="Minimum argmax pixel agreement (overrides the preset)."),
    batch: int = typer.Option(1, "--batch", min=1, max=64, help="Batch size of the test inputs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated test inputs."),
    images: Optional[Path] = typer.Option(None, "--images", help="Compare on this folder's images (up to 32, prepared as the Predictor does) instead of generated inputs: the fair test of an int8 model calibrated on photos."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON on stdout."),
    isolate: bool = isolate_option(),
) -> None:
    """Run the model and its reference on the same inputs; exit 1 when a check fails."""
    from runtimes.session import open_session

    probe_if_isolated(isolate, model, provider)
    if reference is not None:
        probe_if_isolated(isolate, reference)

    candidate = open_session(model, provider)
    card = candidate.card
    if card is None:
        raise CardError(f"{model} has no segedge model card; export it with segedge, or compare with --reference")
    chosen = preset or Preset(card.precision)
    tolerance = PRESETS[chosen].with_overrides(atol, rtol, min_agreement)
    require_torch("verify")
    from ..verify import compare, onnx_runner, reference_model, second_size, torch_runner

    if reference is not None:
        against = f"ONNX {reference} (ORT CPU)"
        runner = onnx_runner(open_session(reference, "cpu"))
    else:
        against = "PyTorch"
        module, notes = reference_model(card, weights)
        for note in notes:
            err.print(f"note: {note}")
        runner = torch_runner(module)
    if images is not None:
        from ..agreement import compare_on_images

        results = [compare_on_images(runner, candidate, card, images, tolerance)]
    else:
        checked = parse_sizes(sizes) if sizes is not None else [card.input_size, second_size(card, card.input_size)]
        if not card.dynamic:
            checked = [card.input_size]
        results = compare(runner, candidate, card, checked, tolerance, batch=batch, seed=seed)
    if as_json:
        out.print_json(json.dumps({"model": str(model), "reference": against, "preset": chosen.value,
                                   "passed": all(r.passed for r in results),
                                   "results": [r.to_dict() for r in results]}))
    else:
        _print_table(model, against, chosen, candidate.active_providers, results)
    if not all(r.passed for r in results):
        if images is None and chosen is not Preset.fp32:
            err.print("note: generated inputs are no photos; a quantized model is judged fairly on --images DIR")
        raise ParityError(f"{model} does not match {against} under the {chosen.value} preset")


def _print_table(model: Path, against: str, preset: Preset, providers, results) -> None:
    table = Table(title=f"{model} vs {against} — preset {preset.value}, providers {', '.join(providers)}", title_justify="left")
    for column in ("size", "max abs", "mean abs", "max rel", "cosine", "SQNR dB", "argmax agree", "min class IoU", "status"):
        table.add_column(column, justify="right")
    for r in results:
        p = r.report
        table.add_row(
            _label(r), f"{p.max_abs:.2e}", f"{p.mean_abs:.2e}", f"{p.max_rel:.2e}",
            f"{p.cosine:.6f}", f"{p.sqnr_db:.1f}", f"{p.argmax_agreement:.4%}", f"{p.min_class_iou:.4f}",
            "[green]ok[/]" if r.passed else f"[red]{'; '.join(r.failures)}[/]",
        )
    out.print(table)


def _label(result) -> str:
    """N x H x W for generated inputs; "K images" for a row over --images."""
    return result.label if hasattr(result, "label") else f"{result.batch}x{result.size[0]}x{result.size[1]}"
