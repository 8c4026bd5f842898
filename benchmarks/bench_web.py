"""Issue 28's numbers: a web export timed in headless Chromium (onnxruntime-web WASM) beside PyTorch eager and
ONNX Runtime CPU on the same machine, at one input size, with segedge's own browser runner.

    python benchmarks/bench_web.py [--model lraspp_mobilenet_v3_large] [--size 256x256] [--runs 20] [--rounds 3]

The model (zoo name, demo weights) is exported with `--target web` (onnxruntime-web from npm). In each of
`--rounds` interleaved rounds: the page in Debian's headless Chromium served with COOP/COEP (WASM threads =
cores) times `session.run` on the same 1x3xHxW tensor as Python and `segment()` end to end (preprocessing,
the model, the argmax) on a generated frame; the page served without the headers (one thread) times
`session.run`; Python times PyTorch eager and ONNX Runtime CPU (`session.run`, the same file) with as many
threads as cores. The browser's output is compared with both (argmax agreement). Writes
benchmarks/results/web.{md,json} with the CPU's lscpu flags and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
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
from segedge.web.browser import find_chromium, page_tensor, run_page  # noqa: E402


def timed(run, x: np.ndarray, runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(x)
        times.append(1000 * (time.perf_counter() - start))
    return times


def lscpu() -> dict[str, str]:
    done = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"})
    fields = dict(line.split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    return {key: fields.get(key, "").strip() for key in ("Model name", "CPU(s)", "Flags")}


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean())


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
    loads = [os.getloadavg()]
    chromium = subprocess.run([find_chromium() or "chromium", "--version"], capture_output=True, text=True,
                              check=False).stdout.strip()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "web"
        run_web_export(ExportRequest(source=args.model, output=folder, weights=Path("demo"), input_size=(h, w)))
        session = open_session(folder / "model.onnx", "cpu", threads=threads)
        model, _ = reference_model(session.card, Path("demo"))
        torch.set_num_threads(threads)
        x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
        tensor = f"tensor=1x3x{h}x{w}&runs={args.runs}&warmup=3"

        def eager(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(torch.from_numpy(batch)).numpy()

        for _ in range(args.rounds):
            for isolated in (True, False):
                query = tensor + (f"&time={h}x{w}" if isolated else "")
                posted = run_page(folder, query, isolated=isolated, tensor=x)
                label = f"onnxruntime-web {VERSION} WASM, {posted['threads']} thread(s)"
                output = page_tensor(posted["output"])
                facts[label] = {"crossOriginIsolated": posted["isolated"], "threads": posted["threads"],
                                "argmax_agreement_vs_onnxruntime_cpu": agreement(output, session.run(x)),
                                "argmax_agreement_vs_pytorch_fp32": agreement(output, eager(x)),
                                "max_abs_diff_vs_onnxruntime_cpu": float(np.abs(output - session.run(x)).max()),
                                "chromium_memory_mb_pss": posted["browser_memory_mb"]}
                rows.setdefault(f"{label}: session.run", []).extend(posted["run_ms"])
                if isolated:
                    rows.setdefault(f"{label}: segment() end to end", []).extend(posted["times_ms"])
            rows.setdefault(f"PyTorch {torch.__version__} eager, {threads} threads", []).extend(timed(eager, x, args.runs))
            rows.setdefault(f"ONNX Runtime CPU (Python), {threads} threads", []).extend(timed(session.run, x, args.runs))
            loads.append(os.getloadavg())
    eager_p50 = statistics.median(next(v for k, v in rows.items() if k.startswith("PyTorch")))
    table = [{"row": k, "p50_ms": statistics.median(v), "p90_ms": float(np.percentile(v, 90)), "runs": len(v),
              "x_eager": eager_p50 / statistics.median(v)} for k, v in rows.items()]
    cpu = lscpu()
    result = {"model": args.model, "weights": "demo", "size": [h, w], "rounds": args.rounds, "runs_per_round": args.runs,
              "cpu": cpu["Model name"] or platform.processor(), "cores": threads, "lscpu_flags": cpu["Flags"],
              "load_average_1_5_15_min": {"before": loads[0], "after_each_round": loads[1:]},
              "browser": f"{chromium}, headless, --disable-gpu", "facts": facts, "rows": table}
    out = ROOT / "benchmarks" / "results"
    (out / "web.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# {args.model} (demo weights) at {h}x{w}: the browser beside Python, {threads} cores",
             "", f"CPU: {result['cpu']} ({threads} CPUs; lscpu flags in web.json). Browser: {result['browser']}.",
             f"{args.rounds} interleaved rounds of {args.runs} timed runs (3 warm-up) per row, timed by "
             "`benchmarks/bench_web.py` (segedge's browser runner, `segedge.web.browser`).",
             f"The machine is shared with other jobs: load average (1 min) {loads[0][0]:.1f} before, "
             + ", ".join(f"{load[0]:.1f}" for load in loads[1:]) + " after each round.",
             "x eager: PyTorch eager's p50 over the row's (above 1: faster than eager).",
             "", "| row | p50 ms | p90 ms | x eager |", "|---|---:|---:|---:|"]
    lines += [f"| {r['row']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['x_eager']:.2f} |" for r in table]
    lines += ["", "| page | crossOriginIsolated | threads | argmax vs ONNX Runtime CPU | argmax vs PyTorch fp32 | "
              "max abs diff vs ONNX Runtime | Chromium MB (PSS) |", "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {k} | {f['crossOriginIsolated']} | {f['threads']} | {f['argmax_agreement_vs_onnxruntime_cpu']:.4%} | "
              f"{f['argmax_agreement_vs_pytorch_fp32']:.4%} | {f['max_abs_diff_vs_onnxruntime_cpu']:.1e} | "
              f"{f['chromium_memory_mb_pss']:.0f} |" for k, f in facts.items() if isinstance(f, dict)]
    (out / "web.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
