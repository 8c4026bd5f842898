"""`segedge bench`: ONNX Runtime on one provider and its peers side by side, one interleaved run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runtimes.backends import RuntimeSpec
from runtimes.errors import SegedgeError, UsageError
from runtimes.backends.onnxruntime_providers import Provider
from runtimes.measure.timing import FailedRun

from segedge.cli.app import app, err, out, print_json, probe_if_isolated, require_torch, with_progress
from segedge.cli.options import (
    CardOptions,
    Isolate,
    Json,
    Runs,
    Warmup,
    Weights,
    parse_list,
    card_options,
    runtime_options,
)


@app.command("bench")
@card_options
@runtime_options(provider_options=True)
def bench_command(
    model: str = typer.Argument(..., help="An ONNX file, or a zoo name / user model to export first."),
    torch_baseline: Optional[bool] = typer.Option(None, "--torch/--no-torch", help="Time the PyTorch eager baseline in the same run (default: when the model's card names its PyTorch source)."),
    compare: Optional[str] = typer.Option(None, "--compare", help="Peers to time in the same run, comma-separated: torch, compile (torch.compile), openvino (OpenVINO's runtime on the same ONNX), ort-cpu (ONNX Runtime's CPU provider), web (onnxruntime-web's WASM in headless Chromium, timed after the others)."),
    warmup: Warmup = 3,
    runs: Runs = 20,
    batch: int = typer.Option(1, "--batch", min=1, max=1024, help="Batch size."),
    weights: Weights = None,
    strict: bool = typer.Option(False, "--strict", help="Fail when any tensor node runs on the CPU while another provider was asked for (profiles one run)."),
    profile: bool = typer.Option(False, "--profile", help="Profile one run: nodes and milliseconds per provider."),
    io_binding: bool = typer.Option(False, "--io-binding", help="Keep input and output on the provider's device: timings exclude host copies."),
    as_json: Json = False,
    isolate: Isolate = False,
    card: CardOptions = CardOptions(),
    spec: RuntimeSpec = RuntimeSpec(),
) -> None:
    """Time ONNX Runtime against its peers: p50/p90/p99, mean, std, throughput, memory, first run, setup."""
    size = card.input_size
    if model.endswith(".onnx"):
        probe_if_isolated(isolate, Path(model), spec.provider, size)
    from segedge.bench import BenchRequest, Peer, run_bench

    peers = _parse_peers(parse_list(compare), Peer)
    wants_torch = torch_baseline or any(p in (Peer.torch, Peer.compile) for p in peers) or (
        torch_baseline is None and not model.endswith((".onnx", ".xml")))
    if wants_torch or not model.endswith((".onnx", ".xml")):
        require_torch("bench")
    request = BenchRequest(
        target=model, spec=spec, torch_baseline=torch_baseline, compare=peers, warmup=warmup, runs=runs,
        input_size=size, batch=batch, weights=weights,
        strict=strict, profile=profile, io_binding=io_binding, card_overrides=card.overrides(),
    )
    result = with_progress("benchmarking", lambda progress: run_bench(request, progress))
    if spec.provider == Provider.auto:
        err.print(f"auto chose the {result.provider} provider ({result.provider_reason})", markup=False)
    if as_json:
        print_json(result)
    else:
        print_bench_table(result)
    for note in result.notes:
        err.print(f"note: {note}", markup=False, highlight=False)
    failed = [r for r in result.rows if isinstance(r, FailedRun)]
    if failed:  # the table and the JSON say why; a script must see it in the exit code too
        raise SegedgeError(f"{len(failed)} of {len(result.rows)} rows failed: "
                           + "; ".join(f"{r.name}: {r.reason}" for r in failed))


def _parse_peers(names: tuple[str, ...] | None, peer_type) -> tuple:
    peers = []
    for name in names or ():
        try:
            peers.append(peer_type(name))
        except ValueError:
            choices = ", ".join(p.value for p in peer_type)
            raise UsageError(f"--compare: unknown peer {name!r}; choose from {choices}") from None
    return tuple(peers)


def print_bench_table(result) -> None:
    cpu = result.machine["cpu"]
    title = (f"{result.model} — batch {result.batch}, {result.input_size[0]}x{result.input_size[1]}, "
             f"{result.threads} threads, {cpu['model']} ({cpu['usable_cpus']} usable CPUs; {' '.join(cpu['flags'])})")
    table = Table(title=title, title_justify="left")
    for column in ("runtime", "provider", "p50 ms", "p90", "p99", "mean", "std", "img/s", "first ms", "setup s",
                   "mem MB", "vs slowest"):
        table.add_column(column, justify="left" if column in ("runtime", "provider") else "right")
    ok = [r for r in result.rows if r.ok]
    slowest = max((r.p50_ms for r in ok), default=0.0)
    for r in result.rows:
        if not r.ok:
            table.add_row(r.name, r.provider, f"[red]failed: {r.reason}[/]", *[""] * 9)
            continue
        memory = f"{r.memory_mb:.0f}" + (f" (+{r.gpu_memory_mb:.0f} GPU)" if r.gpu_memory_mb is not None else "")
        table.add_row(
            r.name, r.provider, f"{r.p50_ms:.1f}", f"{r.p90_ms:.1f}", f"{r.p99_ms:.1f}", f"{r.mean_ms:.1f}",
            f"{r.std_ms:.1f}", f"{r.throughput:.2f}", f"{r.first_run_ms:.0f}", f"{r.setup_s:.2f}",
            memory, f"{slowest / r.p50_ms:.2f}x",
        )
    out.print(table)
    for r in ok:
        for note in r.notes:
            err.print(f"{r.name}: {note}", markup=False)
    err.print(f"active providers: {', '.join(result.active_providers)}", markup=False)
    if result.placement is not None:
        err.print(f"node placement: {result.placement.summary()}", markup=False)
