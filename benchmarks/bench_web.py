"""Issue 28's numbers: a web export timed in headless Chromium (onnxruntime-web WASM) beside PyTorch eager and
ONNX Runtime CPU on the same machine, at one input size.

    python benchmarks/bench_web.py [--model lraspp_mobilenet_v3_large] [--size 256x256] [--runs 20] [--rounds 3]

The model (zoo name, demo weights) is exported with `--target web` (onnxruntime-web 1.31.1 from npm),
then in interleaved rounds: the page in Debian's headless Chromium served with COOP/COEP (WASM threads
= cores) and without (one thread), times `segment()` (preprocessing, the model, the argmax) and
`session.run` alone on a 1x3xHxW tensor; Python times PyTorch eager (the model) and ONNX Runtime CPU
(`session.run`, the same file) with as many threads as cores. Writes benchmarks/results/web.{md,json}
with the CPU's lscpu flags.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporters.targets.ort_web import VERSION  # noqa: E402
from runtimes.backends.onnxruntime_session import open_session  # noqa: E402
from segedge.export.run import ExportRequest  # noqa: E402
from segedge.export.web import run_web_export  # noqa: E402
from segedge.parity.reference import reference_model  # noqa: E402
from tests.web_browser import lscpu_flags, run_harness  # noqa: E402


def timed(run, x: np.ndarray, runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(x)
        times.append(1000 * (time.perf_counter() - start))
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="lraspp_mobilenet_v3_large")
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    h, w = map(int, args.size.split("x"))
    threads = os.cpu_count() or 1
    rows: dict[str, list[float]] = {}
    facts: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "web"
        run_web_export(ExportRequest(source=args.model, output=folder, weights=Path("demo"), input_size=(h, w)))
        session = open_session(folder / "model.onnx", "cpu", threads=threads)
        model, _ = reference_model(session.card)
        torch.set_num_threads(threads)
        x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)

        def eager(batch: np.ndarray) -> None:
            with torch.inference_mode():
                model(torch.from_numpy(batch))

        for round_ in range(args.rounds):
            for isolated in (True, False):
                posted = run_harness(folder, f"time={h}x{w}&runs={args.runs}&warmup=3", Path(work) / f"p{round_}",
                                     isolated=isolated)
                label = f"onnxruntime-web {VERSION} WASM, {posted['threads']} thread(s)"
                facts[label] = {"crossOriginIsolated": posted["isolated"], "threads": posted["threads"]}
                rows.setdefault(f"{label}: session.run", []).extend(posted["run_ms"])
                rows.setdefault(f"{label}: segment() end to end", []).extend(posted["times_ms"])
            rows.setdefault(f"PyTorch {torch.__version__} eager, {threads} threads", []).extend(timed(eager, x, args.runs))
            rows.setdefault(f"ONNX Runtime CPU (Python), {threads} threads", []).extend(timed(session.run, x, args.runs))
    eager_p50 = statistics.median(next(v for k, v in rows.items() if k.startswith("PyTorch")))
    table = [{"row": k, "p50_ms": statistics.median(v), "p90_ms": float(np.percentile(v, 90)), "runs": len(v),
              "x_eager": eager_p50 / statistics.median(v)} for k, v in rows.items()]
    result = {"model": args.model, "weights": "demo", "size": [h, w], "rounds": args.rounds, "runs_per_round": args.runs,
              "cpu": platform.processor() or platform.machine(), "cores": threads, "lscpu_flags": lscpu_flags(),
              "browser": "Debian chromium, headless, --disable-gpu", "facts": facts, "rows": table}
    out = ROOT / "benchmarks" / "results"
    (out / "web.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# {args.model} (demo weights) at {h}x{w}: the browser beside Python, {threads} cores",
             "", f"{args.rounds} interleaved rounds of {args.runs} timed runs (3 warm-up) per row; lscpu flags in web.json.",
             "", "| row | p50 ms | p90 ms | x eager |", "|---|---:|---:|---:|"]
    lines += [f"| {r['row']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['x_eager']:.2f} |" for r in table]
    (out / "web.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
