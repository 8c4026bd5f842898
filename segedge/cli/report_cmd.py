"""`segedge report`: one table of precision x provider x runtime, and the row to ship."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runtimes.backends import RuntimeSpec
from runtimes.errors import ProviderError, SegedgeError, UsageError
from runtimes.backends.onnxruntime_providers import Provider, parse

from segedge.cli.app import app, err, out, require_torch, with_progress
from segedge.cli.options import (
    Budget,
    CardOptions,
    Calib,
    Data,
    DataLimit,
    Json,
    Overwrite,
    Runs,
    Samples,
    Warmup,
    Weights,
    calib_count_option,
    card_options,
    parse_list,
    runtime_options,
)


@app.command("report")
@card_options
@runtime_options(runtime=False, provider=False)  # a report's runtimes and providers are axes: --runtimes, --providers
def report_command(
    model: str = typer.Argument(..., help="A zoo name / user model (exported first), or an ONNX file with a segedge card."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Folder for the models, report.md, report.json, the plot and index.html (default: ./report-<name>)."),
    precisions: str = typer.Option("fp32,fp16,int8", "--precisions", help="Comma-separated: fp32, fp16, int8."),
    providers: str = typer.Option("cpu", "--providers", help="ONNX Runtime providers, comma-separated: cpu, cuda, tensorrt, openvino, coreml, directml, auto."),
    runtimes: str = typer.Option("onnxruntime,openvino,torch,compile", "--runtimes", help="Runtimes, comma-separated: onnxruntime, openvino (its own runtime), torch (eager), compile (torch.compile), and by name: litert and executorch (fp32 and int8 files converted from the PyTorch model by each runtime's own tools; needs segedge\\[litert-export] / segedge\\[executorch]), web (the fp32 file on onnxruntime-web in headless Chromium, timed after the rounds)."),
    calib: Calib = None,
    calib_count: int = calib_count_option(" Without --calib: generated shapes images, and the report says so."),
    data: Data = None,
    data_limit: DataLimit = None,
    warmup: Warmup = 3,
    runs: Runs = 20,
    weights: Weights = None,
    overwrite: Overwrite = False,
    budget: Budget = 1.0,
    samples: Samples = 4,
    as_json: Json = False,
    card: CardOptions = CardOptions(),
    spec: RuntimeSpec = RuntimeSpec(),
) -> None:
    """Export, quantize, check and time every precision x provider x runtime; name the best row."""
    require_torch("report")
    from segedge.report import ReportRequest, report_name, run_report
    from segedge.report.render import to_dict, write_report
    from segedge.report.samples import SampleBook

    folder = output or Path(f"report-{report_name(model)}")
    request = ReportRequest(
        target=model, output=folder, precisions=parse_list(precisions) or (),
        providers=_providers(providers), runtimes=parse_list(runtimes) or (),
        calib=calib, calib_count=calib_count, data=data, data_limit=data_limit,
        input_size=card.input_size, spec=spec, warmup=warmup, runs=runs,
        weights=weights, budget=budget, card_overrides=card.overrides(),
        overwrite=overwrite,
    )
    book = SampleBook(samples)
    report = with_progress("reporting", lambda progress: run_report(request, progress, book))
    written = write_report(report, folder, book)
    if as_json:
        out.print_json(json.dumps(to_dict(report, written)))
    else:
        _print_table(report)
    for name, path in written.items():
        err.print(f"{name}: {path}", markup=False)
    failed = [r for r in report.rows if r.status != "ok"]
    if failed:  # the files are kept (they say why each row failed), but a script must see the failure
        raise SegedgeError(f"{len(failed)} of {len(report.rows)} rows of the report failed "
                           f"({', '.join(r.label for r in failed)}); the reasons are in {written['markdown']}")


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
    for column in ("precision", "provider", "runtime", "target", "status", "MB", "agree", "mIoU", "lost", "p50 ms", "p90 ms", "img/s", "mem MB"):
        table.add_column(column, justify="left" if column in ("precision", "provider", "runtime", "target", "status") else "right")
    for r in report.rows:
        status = "[green]ok[/]" if r.status == "ok" else f"[red]failed: {r.reason}[/]"
        best = " [bold]best[/]" if r.label == report.best else ""
        table.add_row(
            r.precision, r.provider, r.runtime + best, r.target or "", status, _f(r.size_mb, 1),
            "" if r.agreement is None else f"{r.agreement:.2%}", _f(r.miou, 4), _f(r.miou_lost, 2), _f(r.p50_ms, 1), _f(r.p90_ms, 1),
            _f(r.throughput, 2), _f(r.memory_mb, 0),
        )
    out.print(table)
    err.print(f"best: {report.best or 'none'} — {report.best_reason}", markup=False)
    for target, label in report.per_target.items():
        err.print(f"best for --target {target}: {label or 'no row meets the rule'}", markup=False)


def _f(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"
