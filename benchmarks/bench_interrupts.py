"""Ctrl-C latency: `segedge export MODEL` interrupted 20 times, inside torch.export, onnxsim and the parity check.

    python benchmarks/bench_interrupts.py [--model deeplabv3plus] [--runs 20]

Each run starts `python -m segedge export MODEL -o x.onnx` with a private $TMPDIR, waits for a
phase (found by the files the export makes in its work folder: torch.export is writing raw.onnx,
onnxsim runs on it, the parity check runs on model.onnx), waits a chosen moment into it, sends
SIGINT (what Ctrl-C sends) and measures the time until the process has exited. Every run must
exit 130 with `segedge: error: interrupted`, leave no x.onnx and no temporary. The issue's bound
is 2 s. Results: benchmarks/results/interrupts.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PHASES = {  # where, and how far into it (s), the signal lands
    "torch.export": (lambda work: True, (1.0, 4.0, 8.0, 12.0)),
    "onnxsim": (lambda work: (work / "raw.onnx").exists(), (0.2, 1.0, 3.0)),
    "parity": (lambda work: (work / "model.onnx").exists(), (0.2, 1.0, 2.0)),
}


def one_run(model: str, phase: str, delay: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-interrupts-") as scratch:
        tmp = Path(scratch) / "tmp"
        tmp.mkdir()
        out = Path(scratch) / "x.onnx"
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen([sys.executable, "-m", "segedge", "export", model, "-o", str(out)], cwd=ROOT,
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        reached, _ = PHASES[phase]
        while True:
            works = list(tmp.glob("segedge-export-*"))
            if works and reached(works[0]):
                break
            if process.poll() is not None:
                return {"phase": phase, "delay_s": delay, "error": f"ended (rc {process.returncode}) before the phase"}
            time.sleep(0.01)
        time.sleep(delay)
        finished_first = process.poll() is not None
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
        latency = time.monotonic() - sent
        leftovers = [str(p.relative_to(scratch)) for p in Path(scratch).rglob("*")
                     if p.name.startswith((".x.onnx", "segedge-")) or p == out]
        return {"phase": phase, "delay_s": delay, "exit_code": process.returncode, "latency_s": round(latency, 3),
                "message": err.strip().splitlines()[-1] if err.strip() else "", "leftovers": leftovers,
                "finished_before_the_signal": finished_first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="deeplabv3plus")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    plan = [(phase, delay) for phase, (_, delays) in PHASES.items() for delay in delays]
    runs = []
    for i in range(args.runs):
        phase, delay = plan[i % len(plan)]
        record = one_run(args.model, phase, delay)
        print(record, flush=True)
        runs.append(record)
    timed = sorted(r["latency_s"] for r in runs if "latency_s" in r)
    good = [r for r in runs if r.get("exit_code") == 130 and r.get("message") == "segedge: error: interrupted"
            and not r.get("leftovers")]
    lines = [
        f"# Ctrl-C during `segedge export {args.model}`: {len(runs)} runs",
        "",
        ("`python benchmarks/bench_interrupts.py` (see its docstring). SIGINT at a moment inside torch.export, onnxsim "
         "or the parity check; latency from the signal to the process's exit."),
        "",
        f"- exit 130 with one `interrupted` line, no output, no temporary: **{len(good)} of {len(runs)}**",
        (f"- latency: median {timed[len(timed) // 2]:.2f} s, max {timed[-1]:.2f} s, min {timed[0]:.2f} s "
         f"(bound: 2 s)" if timed else "- latency: no run reached its phase"),
        "",
        "| phase | into it, s | exit | latency s |",
        "|---|---:|---:|---:|",
        *(f"| {r['phase']} | {r['delay_s']} | {r.get('exit_code', r.get('error'))} | {r.get('latency_s', '')} |"
          for r in runs),
        "",
    ]
    from runtimes.guards.fileio import write_text_atomic

    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "interrupts.json", json.dumps(runs, indent=2))
    write_text_atomic(RESULTS / "interrupts.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
