"""Issue 5's zoo table: every registered model at 512x512 on the CPU — parameters, GFLOPs, ONNX
size, export time, ORT fp32 p50 and PyTorch eager p50 from one interleaved run, and their ratio.

    python benchmarks/bench_zoo.py [--size 512] [--runs 5] [--threads 2] [--only NAME,...]

Writes benchmarks/results/zoo.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from runtimes.measure.timing import Runner, time_runners
from runtimes.guards.fileio import write_text_atomic
from runtimes.measure.machine import machine_record
from runtimes.backends.onnxruntime_session import open_session
from segedge.models import list_models
from segedge.export.run import ExportRequest, run_export

RESULTS = Path(__file__).parent / "results"


def gflops(model: torch.nn.Module, size: int) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 1e9


def bench_one(name: str, size: int, runs: int, warmup: int, threads: int, workdir: Path) -> dict:
    from segedge.sources import build

    torch.set_num_threads(threads)
    spec_size = size
    start = time.perf_counter()
    result = run_export(ExportRequest(source=name, output=workdir / f"{name}.onnx", input_size=(spec_size, spec_size)))
    export_s = time.perf_counter() - start
    session = open_session(result.path, "cpu", threads, spinning=False)  # PyTorch runs right after it
    model = build(name).module.eval()
    x = torch.randn(1, 3, spec_size, spec_size)

    def torch_run(batch):
        with torch.inference_mode():
            return model(batch)

    rows = time_runners(
        [Runner("onnxruntime fp32", "onnxruntime", "cpu", session.run), Runner("pytorch eager", "torch", "cpu", torch_run)],
        lambda r: x.numpy() if r.runtime == "onnxruntime" else x, batch=1, warmup=warmup, runs=runs,
    )
    ort_row, torch_row = rows
    row = {
        "name": name,
        "params": sum(p.numel() for p in model.parameters()),
        "gflops": gflops(model, spec_size),
        "onnx_mb": result.path.stat().st_size / 1e6,
        "export_s": export_s,
        "parity_ok": result.passed,
        "ort_p50_ms": ort_row.p50_ms,
        "torch_p50_ms": torch_row.p50_ms,
        "speedup": torch_row.p50_ms / ort_row.p50_ms,
    }
    result.path.unlink()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    names = [s.name for s in list_models()]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="segedge-zoo-") as workdir:
        for name in names:
            size = args.size
            if name == "unet":  # the paper's valid U-Net takes 16k + 188; the nearest to --size
                from segedge.models.unet import unet_valid_input_size

                size = unet_valid_input_size(args.size)
            print(f"{name} at {size}x{size} ...", flush=True)
            rows.append(bench_one(name, size, args.runs, args.warmup, args.threads, Path(workdir)))
            print(json.dumps(rows[-1]), flush=True)
    cpu = machine_record()["cpu"]
    lines = [
        f"# Zoo at {args.size}x{args.size} on the CPU — batch 1, {args.threads} threads, {args.runs} timed runs",
        "",
        f"CPU: {cpu['model']} ({cpu['usable_cpus']} usable CPUs; flags: {' '.join(cpu['flags'])})",
        "",
        "| model | params | GFLOPs | ONNX MB | export s | parity | ORT p50 ms | torch p50 ms | ORT speed-up |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| `{r['name']}` | {r['params'] / 1e6:.2f}M | {r['gflops']:.1f} | {r['onnx_mb']:.1f} | {r['export_s']:.0f} | "
                     f"{'ok' if r['parity_ok'] else 'FAIL'} | {r['ort_p50_ms']:.0f} | {r['torch_p50_ms']:.0f} | {r['speedup']:.2f}x |")
    speedups = sorted(r["speedup"] for r in rows)
    if speedups:
        lines += ["", f"Median ORT speed-up over PyTorch eager: {speedups[len(speedups) // 2]:.2f}x "
                      f"(range {speedups[0]:.2f}x – {speedups[-1]:.2f}x over {len(rows)} models)."]
    load = os.getloadavg()
    lines += ["", f"Load average at the end: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min). ONNX Runtime's idle threads "
                  "do not spin-wait (they would slow the PyTorch run that follows them)."]
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "zoo.md", "\n".join(lines) + "\n")
    write_text_atomic(RESULTS / "zoo.json", json.dumps({"rows": rows, "machine": machine_record()}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
