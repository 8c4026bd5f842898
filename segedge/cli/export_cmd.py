"""`segedge export`: a zoo model or the user's own, to one verified ONNX file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runtimes.errors import ParityError, UsageError
from segedge.cli import quantize_cmd
from segedge.cli.app import app, err, out, print_json, require_torch, with_progress
from segedge.cli.options import Calib, CardOptions, ExportTo, Json, Weights, card_options


@app.command("export")
@card_options
def export_command(
    model: str = typer.Argument(..., help="Zoo name (see `segedge models`), or your own `package.module:function` / `file.py:function` returning an nn.Module."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write the .onnx file (default: ./<name>.onnx)."),
    weights: Weights = None,
    num_classes: Optional[int] = typer.Option(None, "--num-classes", min=1, max=65535, help="Number of output classes (builders that take num_classes)."),
    dynamic: bool = typer.Option(True, "--dynamic/--static", help="Dynamic batch, height and width (default), or fixed at --input-size."),
    opset: int = typer.Option(18, "--opset", min=11, max=23, help="ONNX opset version."),
    exporter: str = typer.Option("dynamo", "--exporter", help="torch exporter: dynamo (torch.export) or torchscript."),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Simplify the graph with onnxsim (checked)."),
    precision: ExportTo = typer.Option("fp32", "--precision", help="fp32, or fp16 / int8 / auto to quantize the export (as `segedge quantize` does)."),
    calib: Calib = None,
    as_json: Json = False,
    card: CardOptions = CardOptions(),
) -> None:
    """Export, simplify and verify a model; write one self-contained .onnx with its model card."""
    from exporters.torch_to_onnx import Exporter

    try:
        chosen = Exporter(exporter)
    except ValueError:
        raise UsageError(f"--exporter must be dynamo or torchscript, got {exporter!r}") from None
    require_torch("export")
    from segedge.export import ExportRequest, run_export

    request = ExportRequest(
        source=model,
        output=output,
        weights=weights,
        num_classes=num_classes,
        input_size=card.input_size,
        dynamic=dynamic,
        opset=opset,
        exporter=chosen,
        simplify=simplify,
        card_fields={k: v for k, v in card.overrides().items() if k != "input_size"},
        precision=precision.value,
        calib=calib,
    )
    result = with_progress("exporting", lambda progress: run_export(request, progress))
    for note in result.notes:
        err.print(f"note: {note}")
    if not result.simplified:
        err.print(f"warning: {result.simplify_message}")
    for warning in result.quantized.warnings if result.quantized else ():
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)
    else:
        _print_summary(result)
    if not result.passed:
        failures = "; ".join(f"{p.label}: {', '.join(p.failures)}" for p in result.parity if p.failures)
        if failures:
            raise ParityError(f"exported, but parity with PyTorch failed ({failures})")
        assert result.quantized is not None  # the export passed: the conversion failed its preset
        raise ParityError(f"wrote {result.path}, but it fails the {precision.value} preset: {'; '.join(result.quantized.failures)}")


def _print_summary(result) -> None:
    from runtimes.onnx_info import describe_model

    info = describe_model(result.path)
    card = result.card
    err.print(f"[bold]{card.name}[/] -> {result.path}  ({info.size_mb:.1f} MB, opset {card.opset}, "
              f"{card.exporter} exporter, {result.seconds:.1f} s)")
    err.print(f"  {result.simplify_message}")
    err.print(f"  input  {info.inputs[0]}\n  output {info.outputs[0]}", markup=False)
    table = Table(title="parity vs PyTorch (ORT CPU, fp32)", title_justify="left")
    for column in ("inputs", "max abs", "/ range", "cosine", "SQNR dB", "argmax agree", "status"):
        table.add_column(column, justify="right")
    for check in result.parity:
        p = check.parity
        table.add_row(
            check.label, f"{p.max_abs:.2e}", f"{p.max_abs / max(p.logits_range, 1e-12):.1e}",
            f"{p.cosine:.6f}", f"{p.sqnr_db:.1f}", f"{p.argmax_agreement:.4%}",
            "[green]ok[/]" if check.passed else f"[red]{', '.join(check.failures)}[/]",
        )
    out.print(table)
    if result.quantized:
        quantize_cmd.print_result(result.quantized)
    err.print("next:")
    err.print(f"  segedge verify {result.path} --sizes 512x512,384x640", markup=False)
    err.print(f"  segedge bench {result.path} --torch", markup=False)
    err.print(f"  segedge predict {result.path} photo.jpg -o masks/ --overlay", markup=False)
