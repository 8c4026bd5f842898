"""`segedge bench`: ONNX Runtime and the PyTorch baseline side by side, one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runtimes.providers import Provider

from .app import app, err, out, parse_size, require_torch


@app.command("bench")
def bench_command(
    model: str = typer.Argument(..., help="An ONNX file, or a zoo name / user model to export first."),
    provider: Provider = typer.Option(Provider.cpu, "--provider", help="ONNX Runtime execution provider; `auto` picks the best available."),
    torch_baseline: bool = typer.Option(True, "--torch/--no-torch", help="Time the PyTorch eager baseline in the same run."),
    warmup: int = typer.Option(3, "--warmup", min=0, max=1000, help="Untimed runs before timing."),
    runs: int = typer.Option(20, "--runs", min=1, max=100000, help="Timed runs per runtime."),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="HxW (default: the card's export size)."),
    batch: int = typer.Option(1, "--batch", min=1, max=1024, help="Batch size."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024, help="Intra-op threads for every runtime (default: the CPUs this process may use)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint for the PyTorch baseline (and export)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
) -> None:
    """Time ONNX Runtime against PyTorch eager: mean, p50/p90/p99, std, throughput, memory."""
    if torch_baseline or not model.endswith(".onnx"):
        require_torch("bench")
    from ..bench import BenchRequest, run_bench

    request = BenchRequest(
        target=model, provider=provider, torch_baseline=torch_baseline, warmup=warmup, runs=runs,
        input_size=parse_size(input_size) if input_size else None, batch=batch, threads=threads, weights=weights,
    )
    if provider is Provider.auto:
        from runtimes.providers import resolve

        err.print(f"auto chose the {resolve(provider).value} provider")
    with err.status("benchmarking") as status:
        result = run_bench(request, progress=lambda message: status.update(message))
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    print_bench_table(result)


def print_bench_table(result) -> None:
    cpu = result.machine["cpu"]
    title = (f"{result.model} — batch {result.batch}, {result.input_size[0]}x{result.input_size[1]}, "
             f"{result.threads} threads, {cpu['model']} ({cpu['usable_cpus']} usable CPUs; {' '.join(cpu['flags'])})")
    table = Table(title=title, title_justify="left")
    for column in ("runtime", "provider", "mean ms", "p50", "p90", "p99", "std", "img/s", "first ms", "setup s", "mem MB", "vs slowest"):
        table.add_column(column, justify="left" if column in ("runtime", "provider") else "right")
    slowest = max(r.p50_ms for r in result.rows)
    for r in result.rows:
        table.add_row(
            r.name, r.provider, f"{r.mean_ms:.1f}", f"{r.p50_ms:.1f}", f"{r.p90_ms:.1f}", f"{r.p99_ms:.1f}",
            f"{r.std_ms:.1f}", f"{r.throughput:.2f}", f"{r.first_run_ms:.0f}", f"{r.setup_s:.2f}",
            f"{r.memory_mb:.0f}", f"{slowest / r.p50_ms:.2f}x",
        )
    out.print(table)
    err.print(f"active providers: {', '.join(result.active_providers)}")
