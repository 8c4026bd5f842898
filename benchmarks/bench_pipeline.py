"""Issue 2's benchmark: `segedge bench deeplabv3plus` at 512x512, batch 1, 2 threads,
ORT CPU fp32 vs PyTorch eager fp32 in one interleaved run. Writes benchmarks/results/pipeline.{md,json}.

    python benchmarks/bench_pipeline.py [--model deeplabv3plus] [--runs 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtimes.backends import RuntimeSpec
from runtimes.guards.fileio import write_text_atomic
from segedge.bench import BenchRequest, run_bench

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="deeplabv3plus")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    result = run_bench(BenchRequest(target=args.model, input_size=(args.size, args.size), runs=args.runs,
                                    warmup=args.warmup, spec=RuntimeSpec(threads=args.threads)), progress=print)
    ort_row, torch_row = result.rows
    ratio = torch_row.p50_ms / ort_row.p50_ms
    cpu = result.machine["cpu"]
    lines = [
        f"# segedge bench {args.model} — {args.size}x{args.size}, batch 1, {result.threads} threads",
        "",
        f"CPU: {cpu['model']} ({cpu['usable_cpus']} usable CPUs; flags: {' '.join(cpu['flags'])}); "
        f"versions: {', '.join(f'{k} {v}' for k, v in result.machine['versions'].items())}",
        "",
        "| runtime | provider | p50 ms | p90 ms | p99 ms | mean ms | std ms | img/s | first ms | mem MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.rows:
        lines.append(f"| {r.name} | {r.provider} | {r.p50_ms:.1f} | {r.p90_ms:.1f} | {r.p99_ms:.1f} | {r.mean_ms:.1f} | "
                     f"{r.std_ms:.1f} | {r.throughput:.2f} | {r.first_run_ms:.0f} | {r.memory_mb:.0f} |")
    lines += ["", f"**ONNX Runtime is {ratio:.2f}x faster than PyTorch eager (p50, same run).**", ""]
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "pipeline.md", "\n".join(lines))
    write_text_atomic(RESULTS / "pipeline.json", json.dumps({**result.to_dict(), "ort_speedup_p50": ratio}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
