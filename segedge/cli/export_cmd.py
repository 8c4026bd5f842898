"""`segedge export`: a zoo model or the user's own, to one verified ONNX file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from runtimes.errors import ParityError, UsageError
from segedge.cli import quantize_cmd
from segedge.cli.app import app, err, out, print_json, require_torch, with_progress
from segedge.cli.options import (Calib, CardOptions, ExportTo, Json, OutputKey, Overwrite, TargetName, Weights,
                                 card_options)


@app.command("export")
@card_options
def export_command(
    model: str = typer.Argument(..., help="Zoo name (see `segedge models`), your own `package.module:function` / `file.py:function` returning an nn.Module, or (with --target) an ONNX file."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write the .onnx file (default: ./<name>.onnx; with --target, ./<name>_<target> with its suffix)."),
    target: TargetName = typer.Option("cpu", "--target", help="Where the file will run: cpu (today's dynamic .onnx), gpu, mobile (ORT format), nnapi, coreml (ORT format for ONNX Runtime's CoreML EP), qnn (static uint16-activation QDQ), openvino (IR), tensorrt, web (a folder for onnxruntime-web in the browser), mlpackage (a Core ML .mlpackage), litert (a .tflite for LiteRT), executorch (a .pte for ExecuTorch); each target's checks run and name what would not run there."),
    weights: Weights = None,
    num_classes: Optional[int] = typer.Option(None, "--num-classes", min=1, max=65535, help="Number of output classes (builders that take num_classes)."),
    dynamic: bool = typer.Option(True, "--dynamic/--static", help="Dynamic batch, height and width (default), or fixed at --input-size."),
    opset: int = typer.Option(18, "--opset", min=11, max=23, help="ONNX opset version."),
    exporter: str = typer.Option("dynamo", "--exporter", help="torch exporter: dynamo (torch.export) or torchscript."),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Simplify the graph with onnxsim (checked)."),
    precision: ExportTo = typer.Option("fp32", "--precision", help="fp32, or fp16 / int8 / auto to quantize the export (as `segedge quantize` does; --target executorch or litert: int8, or auto for int8 repaired within 1 point by segedge's search on the target's own quantizer)."),
    calib: Calib = None,
    output_key: OutputKey = None,
    ort_web: Optional[Path] = typer.Option(None, "--ort-web", help="--target web: a local copy of onnxruntime-web 1.31.1 (the unpacked npm package, its dist/ folder or its .tgz) instead of `npm pack` at export time."),
    side_range: Optional[str] = typer.Option(None, "--side-range", help="--target executorch: the smallest and largest side the program takes, e.g. 64-1024, multiples of the size divisor (default: 64 to 1024; --static: one size)."),
    as_json: Json = False,
    overwrite: Overwrite = False,
    card: CardOptions = CardOptions(),
) -> None:
    """Export, simplify and verify a model; write one self-contained .onnx with its model card."""
    from exporters.torch_to_onnx import Exporter

    try:
        chosen = Exporter(exporter)
    except ValueError:
        raise UsageError(f"--exporter must be dynamo or torchscript, got {exporter!r}") from None
    from segedge.export import ExportRequest, run_export
    from segedge.export.target import is_onnx_source

    if not is_onnx_source(model):
        require_torch("export")
    elif target.value == "cpu":
        raise UsageError(f"{model} is an ONNX file already; give --target to build an edge artefact from it")

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
        overwrite=overwrite,
        output_key=output_key,
        side_range=_side_range(side_range),
    )
    if ort_web is not None and target.value != "web":
        raise UsageError("--ort-web is for --target web")
    if target.value != "cpu":
        _export_for_target(request, target.value, as_json, ort_web)
        return
    result = with_progress("exporting", lambda progress: run_export(request, progress))
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    if not result.simplified:
        err.print(f"warning: {result.simplify_message}", markup=False)
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
        raise quantize_cmd.preset_failure(result.path, precision.value, result.quantized.failures)


def _side_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    low, _, high = text.partition("-")
    if not (low.strip().isdigit() and high.strip().isdigit()) or not 0 < int(low) <= int(high):
        raise UsageError(f"--side-range takes two sides in pixels, smallest first, e.g. 64-1024; got {text!r}")
    return int(low), int(high)


def _print_summary(result) -> None:
    from runtimes.model.onnx_info import describe_model

    info = describe_model(result.path)
    card = result.card
    err.print(f"[bold]{escape(card.name)}[/] -> {escape(str(result.path))}  ({info.size_mb:.1f} MB, opset {card.opset}, "
              f"{card.exporter} exporter, {result.seconds:.1f} s)")
    err.print(f"  {result.simplify_message}", markup=False)
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


def _export_for_target(request, target: str, as_json: bool, ort_web: Path | None = None) -> None:
    """`--target`: build the artefact, print what would not run there (before writing), judge it."""
    from exporters.targets import TargetBuildError
    from segedge.export.target import run_target_export

    def show(checks) -> None:
        if not as_json:
            print_target_checks(checks)

    def build(progress):
        if target == "web":  # a folder, and a Core ML package: writers of their own
            from segedge.export.web import run_web_export

            return run_web_export(request, progress, show, ort_web)
        if target == "mlpackage":
            from segedge.export.mlpackage import run_mlpackage_export

            built = run_mlpackage_export(request, progress)
            show(built.target.checks)
            return built
        return run_target_export(request, target, progress, show)

    try:
        result = with_progress(f"exporting for {target}", build)
    except TargetBuildError as exc:
        raise TargetBuildError(f"nothing written: {exc}", exc.checks) from None
    if as_json:
        print_json(result)
    else:
        _print_target_result(result.target)
    if not result.passed:
        verification = result.target.verification
        why = "; ".join(verification.failures) if verification is not None else "the fp32 export failed its parity check"
        raise ParityError(f"wrote {result.target.path}, but it does not match the fp32 model: {why}")


def print_target_checks(checks) -> None:
    """One table of what would not run on the target (operator, node, reason), and node counts per check."""
    for report in checks:
        where = f"{report.check} ({report.runtime})"
        if not report.ran:
            err.print(f"check {where}: did not run here ({report.note})", markup=False, highlight=False)
            continue
        err.print(f"check {where}: {report.supported} of {report.nodes} nodes supported, {report.falling_back} "
                  f"fall back{f' to {report.fallback}' if report.fallback else ''}"
                  + (f", {report.partitions} partitions" if report.partitions is not None else ""),
                  markup=False, highlight=False)
    rows = [row for report in checks for row in report.unsupported]
    if rows:
        table = Table(title="would not run on the target", title_justify="left")
        for column in ("operator", "node", "reason", "check"):
            table.add_column(column)
        for row in rows:
            table.add_row(escape(row.op_type), escape(row.node), escape(row.reason), escape(row.check))
        out.print(table)


def _print_target_result(result) -> None:
    shape = "x".join(map(str, result.input_shape)) if result.input_shape else "dynamic N x 3 x H x W"
    opset = f"opset {result.opset}, " if result.opset else ""  # a Core ML package has none
    err.print(f"{result.target}: {', '.join(str(p) for p in result.artefacts)}  ({shape}, {opset}"
              f"{result.precision})", markup=False, highlight=False)
    verification = result.verification
    if verification is not None:
        p = verification.parity
        status = "ok" if verification.passed else "FAILED: " + "; ".join(verification.failures)
        err.print(f"  verified on {verification.runtime} against {verification.reference} ({verification.preset} "
                  f"preset): argmax agreement {p.argmax_agreement:.4%}, min class IoU {p.min_class_iou:.4f} - {status}",
                  markup=False, highlight=False)
    for what in result.not_built:
        err.print(f"  not built here: {what}", markup=False, highlight=False)
    for what in result.not_checked:
        err.print(f"  needs the device to check: {what}", markup=False, highlight=False)
    for note in result.notes:
        err.print(f"  note: {note}", markup=False, highlight=False)
