"""`segedge bench`: ONNX Runtime on one provider and its peers side by side, one interleaved run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runtimes.errors import UsageError
from runtimes.providers import Provider, ProviderOptions

from .app import app, err, isolate_option, out, parse_list, parse_size, probe_if_isolated, require_torch


@app.command("bench")
def bench_command(
    model: str = typer.Argument(..., help="An ONNX file, or a zoo name / user model to export first."),
    provider: Provider = typer.Option(Provider.cpu, "--provider", help="ONNX Runtime execution provider; `auto` picks the best available and says which."),
    torch_baseline: bool = typer.Option(True, "--torch/--no-torch", help="Time the PyTorch eager baseline in the same run."),
    compare: Optional[str] = typer.Option(None, "--compare", help="Peers to time in the same run, comma-separated: torch, compile (torch.compile), openvino (OpenVINO's runtime on the same ONNX), ort-cpu (ONNX Runtime's CPU provider)."),
    warmup: int = typer.Option(3, "--warmup", min=0, max=1000, help="Untimed runs before timing."),
    runs: int = typer.Option(20, "--runs", min=1, max=100000, help="Timed runs per runtime."),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="HxW (default: the card's export size)."),
    batch: int = typer.Option(1, "--batch", min=1, max=1024, help="Batch size."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024, help="Intra-op threads for every runtime alike (default: the CPUs this process may use)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint for the PyTorch peers (and export)."),
    strict: bool = typer.Option(False, "--strict", help="Fail when any tensor node runs on the CPU while another provider was asked for (profiles one run)."),
    profile: bool = typer.Option(False, "--profile", help="Profile one run: nodes and milliseconds per provider."),
    io_binding: bool = typer.Option(False, "--io-binding", help="Keep input and output on the provider's device: timings exclude host copies."),
    device_id: int = typer.Option(0, "--device-id", min=0, max=64, help="GPU index for cuda / tensorrt / directml."),
    trt_fp16: bool = typer.Option(False, "--trt-fp16", help="TensorRT: allow fp16 kernels."),
    trt_int8: bool = typer.Option(False, "--trt-int8", help="TensorRT: allow int8 kernels (QDQ models)."),
    trt_cache: Optional[Path] = typer.Option(None, "--trt-cache", help="TensorRT: engine cache folder (reused between runs)."),
    openvino_device: str = typer.Option("CPU", "--openvino-device", help="OpenVINO provider: CPU, GPU or NPU."),
    openvino_hint: Optional[str] = typer.Option(None, "--openvino-hint", help="OpenVINO inference precision for the provider and the openvino peer: f32, bf16 or f16 (default: OpenVINO's choice, bf16 on AMX CPUs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    isolate: bool = isolate_option(),
) -> None:
    """Time ONNX Runtime against its peers: p50/p90/p99, mean, std, throughput, memory, first run, setup."""
    size = parse_size(input_size) if input_size is not None else None
    if model.endswith(".onnx"):
        probe_if_isolated(isolate, Path(model), provider, size)
    from ..bench import BenchRequest, Peer, run_bench

    peers = _parse_peers(parse_list(compare), Peer)
    wants_torch = torch_baseline or any(p in (Peer.torch, Peer.compile) for p in peers)
    if wants_torch or not model.endswith(".onnx"):
        require_torch("bench")
    if openvino_hint is not None and openvino_hint not in ("f32", "bf16", "f16"):
        raise UsageError(f"--openvino-hint must be f32, bf16 or f16, got {openvino_hint!r}")
    options = ProviderOptions(device_id=device_id, trt_fp16=trt_fp16, trt_int8=trt_int8, trt_cache_dir=trt_cache,
                              openvino_device=openvino_device, openvino_hint=openvino_hint)
    request = BenchRequest(
        target=model, provider=provider, torch_baseline=torch_baseline, compare=peers, warmup=warmup, runs=runs,
        input_size=size, batch=batch, threads=threads, weights=weights,
        strict=strict, profile=profile, io_binding=io_binding, options=options,
    )
    with err.status("benchmarking") as status:
        result = run_bench(request, progress=lambda message: status.update(message))
    if provider is Provider.auto:
        err.print(f"auto chose the {result.provider} provider ({result.provider_reason})")
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    print_bench_table(result)


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
            err.print(f"{r.name}: {note}")
    err.print(f"active providers: {', '.join(result.active_providers)}")
    if result.placement is not None:
        err.print(f"node placement: {result.placement.summary()}")
