"""`segedge verify`: parity of an ONNX model against PyTorch or against another ONNX model."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runtimes.backends import RuntimeSpec
from runtimes.errors import ParityError
from runtimes.model.precision import Precision
from segedge.cli.app import app, err, out, print_json, probe_if_isolated, require_torch, with_progress
from segedge.cli.options import (CardOptions, Isolate, Json, PresetOpt, Weights, card_options, parse_sizes,
                                 runtime_options)


@app.command("verify")
@card_options
@runtime_options(threads=False)
def verify_command(
    model: Path = typer.Argument(..., help="The ONNX model to check."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Compare against this ONNX model (e.g. the fp32 export) instead of PyTorch."),
    weights: Weights = None,
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Comma-separated HxW sizes (default: the export size and a non-square one)."),
    preset: PresetOpt = None,
    atol: Optional[float] = typer.Option(None, "--atol", min=0, help="Absolute tolerance on logits (overrides the preset)."),
    rtol: Optional[float] = typer.Option(None, "--rtol", min=0, help="Tolerance relative to the logits' range (overrides the preset)."),
    min_agreement: Optional[float] = typer.Option(None, "--min-agreement", min=0, max=1, help="Minimum argmax pixel agreement (overrides the preset)."),
    batch: int = typer.Option(1, "--batch", min=1, max=64, help="Batch size of the test inputs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated test inputs."),
    images: Optional[Path] = typer.Option(None, "--images", help="Compare on this folder's images (up to 32, prepared as the Predictor does) instead of generated inputs: the fair test of an int8 model calibrated on photos."),
    as_json: Json = False,
    isolate: Isolate = False,
    card: CardOptions = CardOptions(),
    spec: RuntimeSpec = RuntimeSpec(),
) -> None:
    """Run the model and its reference on the same inputs; exit 1 when a check fails."""
    from segedge.parity import VerifyRequest, run_verify

    if model.suffix.lower() == ".mlpackage":  # Core ML: against PyTorch, where Core ML runs (a Mac)
        _verify_mlpackage(model, weights, parse_sizes(sizes) if sizes is not None else None)
        return

    probe_if_isolated(isolate, model, spec.provider)
    if reference is not None:
        probe_if_isolated(isolate, reference)
    else:
        require_torch("verify")
    request = VerifyRequest(
        model=model, reference=reference, weights=weights, sizes=parse_sizes(sizes) if sizes is not None else None,
        images=images, preset=preset, atol=atol, rtol=rtol, min_agreement=min_agreement,
        batch=batch, seed=seed, card_overrides=card.overrides(), spec=spec,
    )
    with warnings.catch_warnings(record=True) as said:  # a file quantized for the other runtime: one line
        warnings.simplefilter("always")
        result = with_progress("verifying", lambda progress: run_verify(request, progress))
    for warning in said:
        err.print(f"warning: {warning.message}", markup=False, highlight=False, soft_wrap=True)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    if as_json:
        print_json(result)
    else:
        print_checks(f"{model} vs {result.against} — preset {result.preset.value}, providers {', '.join(result.providers)}",
                     result.checks)
    if not result.passed:
        if result.generated and result.preset is not Precision.fp32:
            err.print("note: generated inputs are no photos; a quantized model is judged fairly on --images DIR")
        raise ParityError(f"{model} does not match {result.against} under the {result.preset.value} preset")


def _verify_mlpackage(model: Path, weights, sizes) -> None:
    from segedge.parity.mlpackage import verify_mlpackage

    require_torch("verify")
    checks = with_progress("verifying", lambda progress: verify_mlpackage(model, weights, sizes, progress))
    print_checks(f"{model} (Core ML) vs PyTorch", checks)
    if not all(check.passed for check in checks):
        raise ParityError(f"{model} does not match its PyTorch model")


def print_checks(title: str, checks) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("inputs", "max abs", "mean abs", "max rel", "cosine", "SQNR dB", "argmax agree", "min class IoU", "status"):
        table.add_column(column, justify="right")
    for check in checks:
        p = check.parity
        table.add_row(
            check.label, f"{p.max_abs:.2e}", f"{p.mean_abs:.2e}", f"{p.max_rel:.2e}",
            f"{p.cosine:.6f}", f"{p.sqnr_db:.1f}", f"{p.argmax_agreement:.4%}", f"{p.min_class_iou:.4f}",
            "[green]ok[/]" if check.passed else f"[red]{'; '.join(check.failures)}[/]",
        )
    out.print(table)
