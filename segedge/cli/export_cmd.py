"""`segedge export`: a zoo model or the user's own, to one verified ONNX file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runtimes.errors import ParityError, UsageError

from . import quantize_cmd
from .app import app, err, out, parse_list, parse_size, parse_triple, require_torch




@app.command("export")
def export_command(
    model: str = typer.Argument(..., help="Zoo name (see `segedge models`), or your own `package.module:function` / `file.py:function` returning an nn.Module."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write the .onnx file (default: ./<name>.onnx)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="state_dict checkpoint to load (torch.load weights_only=True)."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", min=1, max=65535, help="Number of output classes."),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="Export (and first parity) size as HxW, e.g. 512x512."),
    dynamic: bool = typer.Option(True, "--dynamic/--static", help="Dynamic batch, height and width (default), or fixed at --input-size."),
    opset: int = typer.Option(18, "--opset", min=11, max=23, help="ONNX opset version."),
    exporter: str = typer.Option("dynamo", "--exporter", help="torch exporter: dynamo (torch.export) or torchscript."),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Simplify the graph with onnxsim (checked)."),
    mean: Optional[str] = typer.Option(None, "--mean", help="Card: per-channel mean R,G,B in 0..1 units."),
    std: Optional[str] = typer.Option(None, "--std", help="Card: per-channel std R,G,B in 0..1 units."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Card: comma-separated class names."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or fp16 / int8 / auto to quantize the export (as `segedge quantize` does)."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Calibration images for --precision int8 / auto."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Export, simplify and verify a model; write one self-contained .onnx with its model card."""
    from exporters.torch_to_onnx import Exporter

    try:
        chosen = Exporter(exporter)
    except ValueError:
        raise UsageError(f"--exporter must be dynamo or torchscript, got {exporter!r}") from None
    if precision not in ("fp32", "fp16", "int8", "auto"):
        raise UsageError(f"--precision must be fp32, fp16, int8 or auto, got {precision!r}")
    require_torch("export")
    from ..pipeline import ExportRequest, run_export

    card_fields = {
        "mean": parse_triple(mean, "--mean") if mean is not None else None,
        "std": parse_triple(std, "--std") if std is not None else None,
        "classes": parse_list(classes),
    }
    request = ExportRequest(
        source=model,
        output=output,
        weights=weights,
        num_classes=num_classes,
        input_size=parse_size(input_size) if input_size is not None else None,
        dynamic=dynamic,
        opset=opset,
        exporter=chosen,
        simplify=simplify,
        card_fields={k: v for k, v in card_fields.items() if v is not None},
        precision=precision,
        calib=calib,
    )
    with err.status("exporting") as status:
        result = run_export(request, progress=lambda message: status.update(message))
    for note in result.notes:
        err.print(f"note: {note}")
    if not result.simplified:
        err.print(f"warning: {result.simplify_message}")
    if as_json:
        out.print_json(json.dumps(_result_dict(result)))
    else:
        _print_summary(result)
    if not result.passed:
        failures = "; ".join(f"{p.size[0]}x{p.size[1]}: {', '.join(p.failures)}" for p in result.parity if p.failures)
        if failures:
            raise ParityError(f"exported, but parity with PyTorch failed ({failures})")
        raise ParityError(f"wrote {result.path}, but it fails the {precision} preset: {'; '.join(result.quantized.failures)}")


def _result_dict(result) -> dict:
    return {
        "path": str(result.path),
        "size_bytes": result.path.stat().st_size,
        "simplified": result.simplified,
        "simplify_message": result.simplify_message,
        "seconds": result.seconds,
        "passed": result.passed,
        "parity": [p.to_dict() for p in result.parity],
        "notes": result.notes,
        "card": result.card.to_dict(),
        **({"quantized": quantize_cmd.result_dict(result.quantized)} if result.quantized else {}),
    }


def _print_summary(result) -> None:
    from runtimes.onnx_info import describe_model

    info = describe_model(result.path)
    card = result.card
    err.print(f"[bold]{card.name}[/] -> {result.path}  ({info.size_mb:.1f} MB, opset {card.opset}, "
              f"{card.exporter} exporter, {result.seconds:.1f} s)")
    err.print(f"  {result.simplify_message}")
    err.print(f"  input  {info.inputs[0]}\n  output {info.outputs[0]}")
    table = Table(title="parity vs PyTorch (ORT CPU, fp32)", title_justify="left")
    for column in ("size", "max abs", "/ range", "cosine", "SQNR dB", "argmax agree", "status"):
        table.add_column(column, justify="right")
    for p in result.parity:
        r = p.report
        table.add_row(
            f"{p.size[0]}x{p.size[1]}", f"{r.max_abs:.2e}", f"{r.max_abs / max(r.logits_range, 1e-12):.1e}",
            f"{r.cosine:.6f}", f"{r.sqnr_db:.1f}", f"{r.argmax_agreement:.4%}",
            "[green]ok[/]" if p.passed else f"[red]{', '.join(p.failures)}[/]",
        )
    out.print(table)
    if result.quantized:
        quantize_cmd.print_result(result.quantized)
    err.print("next:")
    err.print(f"  segedge verify {result.path} --sizes 512x512,384x640")
    err.print(f"  segedge bench {result.path} --torch")
    err.print(f"  segedge predict {result.path} photo.jpg -o masks/ --overlay")
