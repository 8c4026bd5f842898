"""`segedge report`: one table of precision x provider x runtime, and the row to ship."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runtimes.errors import ProviderError, SegedgeError, UsageError
from runtimes.providers import Provider, parse

from .app import app, err, out, parse_list, parse_size, require_torch


@app.command("report")
def report_command(
    model: str = typer.Argument(..., help="A zoo name / user model (exported first), or an ONNX file with a segedge card."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Folder for the models, report.md, report.json and the plot (default: ./report-<name>)."),
    precisions: str = typer.Option("fp32,fp16,int8", "--precisions", help="Comma-separated: fp32, fp16, int8."),
    providers: str = typer.Option("cpu", "--providers", help="ONNX Runtime providers, comma-separated: cpu, cuda, tensorrt, openvino, coreml, directml, auto."),
    runtimes: str = typer.Option("onnxruntime,openvino,torch,compile", "--runtimes", help="Runtimes, comma-separated: onnxruntime, openvino (its own runtime), torch (eager), compile (torch.compile)."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Folder of calibration images for int8 (default: generated shapes images; say so)."),
    calib_count: int = typer.Option(16, "--calib-count", min=1, max=100000, help="Calibration images to use."),
    data: Optional[Path] = typer.Option(None, "--data", help="Labelled folder (VOC layout, or images/ + masks/) for mIoU."),
    data_limit: Optional[int] = typer.Option(None, "--data-limit", min=1, help="Use only the first N labelled images."),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="HxW to time and check at (default: the card's export size)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024, help="Intra-op threads for every runtime alike (default: the CPUs this process may use)."),
    warmup: int = typer.Option(3, "--warmup", min=0, max=1000, help="Untimed runs per row."),
    runs: int = typer.Option(20, "--runs", min=1, max=100000, help="Timed interleaved rounds."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint for the export and the PyTorch rows."),
    budget: float = typer.Option(1.0, "--budget", min=0, max=100, help="mIoU points a row may lose against PyTorch fp32 and still be named best."),
    openvino_hint: Optional[str] = typer.Option(None, "--openvino-hint", help="OpenVINO inference precision (runtime and provider): f32, bf16 or f16 (default: OpenVINO's choice)."),
    as_json: bool = typer.Option(False, "--json", help="Print report.json on stdout too."),
) -> None:
    """Export, quantize, check and time every precision x provider x runtime; name the best row."""
    require_torch("report")
    from ..report import ReportRequest, run_report
    from ..report_render import to_dict, write_report

    from ..report import report_name

    folder = output or Path(f"report-{report_name(model)}")
    request = ReportRequest(
        target=model, output=folder, precisions=parse_list(precisions) or (),
        providers=_providers(providers), runtimes=parse_list(runtimes) or (),
        calib=calib, calib_count=calib_count, data=data, data_limit=data_limit,
        input_size=parse_size(input_size) if input_size else None, threads=threads, warmup=warmup, runs=runs,
        weights=weights, budget=budget, openvino_hint=openvino_hint,
    )
    with err.status("reporting") as status:
        report = run_report(request, progress=lambda message: status.update(message))
    written = write_report(report, folder)
    if as_json:
        out.print_json(json.dumps(to_dict(report, written)))
    else:
        _print_table(report)
    for name, path in written.items():
        err.print(f"{name}: {path}")
    if not any(r.status == "ok" for r in report.rows):
        # The files are kept (they say why each row failed), but a script must see the failure.
        raise SegedgeError(f"every row of the report failed; the reasons are in {written['markdown']}")


def _providers(text: str) -> tuple[Provider, ...]:
    try:
        chosen = tuple(parse(p) for p in parse_list(text) or ())
    except ProviderError as exc:
        raise UsageError(f"--providers: {exc}") from None
    if not chosen:
        raise UsageError("--providers: name at least one provider, e.g. cpu")
    return chosen


def _print_table(report) -> None:
    table = Table(title=f"{report.model} — {report.input_size[0]}x{report.input_size[1]}, {report.threads} threads",
                  title_justify="left")
    for column in ("precision", "provider", "runtime", "status", "MB", "agree", "mIoU", "p50 ms", "p90 ms", "img/s", "mem MB"):
        table.add_column(column, justify="left" if column in ("precision", "provider", "runtime", "status") else "right")
    for r in report.rows:
        status = "[green]ok[/]" if r.status == "ok" else f"[red]failed: {r.reason}[/]"
        best = " [bold]best[/]" if r.label == report.best else ""
        table.add_row(
            r.precision, r.provider, r.runtime + best, status, _f(r.size_mb, 1),
            "" if r.agreement is None else f"{r.agreement:.2%}", _f(r.miou, 4), _f(r.p50_ms, 1), _f(r.p90_ms, 1),
            _f(r.throughput, 2), _f(r.memory_mb, 0),
        )
    out.print(table)
    err.print(f"best: {report.best or 'none'} — {report.best_reason}")


def _f(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"
