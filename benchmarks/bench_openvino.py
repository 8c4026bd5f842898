"""Issue 13's benchmark: the fastest shippable path on this CPU, OpenVINO behind the Predictor included.

For DeepLab v3+ (ResNet-50), PSPNet (ResNet-50) and U-Net at 512 x 512, 2 threads, per model:

1. one `segedge report` (every row in one interleaved run): PyTorch eager fp32; ONNX Runtime CPU fp32
   and int8 (ORT's QDQ); OpenVINO through the Predictor's adapter on the fp32 file (f32 and bf16
   hints), on ORT's int8 QDQ file and on NNCF's int8 IR (`quantize --for openvino`); mIoU on the
   held-out split where demo-trained weights (`--weights demo`, segedge.train.demo) are cached,
   else random weights (the report then names no verdict, and the table says so);
2. a second interleaved run on NNCF's IR: the Predictor's adapter vs hand-tuned OpenVINO (the
   plain API as `benchmark_app -shape` drives it: static shape, LATENCY, same threads) vs the
   Predictor end to end (a 512 x 512 uint8 image in, its mask out): the overhead is the Predictor's
   time less its model's, in % of the model's.

Writes benchmarks/results/openvino.md and openvino.json (with `lscpu` flags), and each model's report
under benchmarks/results/openvino/<model>/.

    nice -n 10 python benchmarks/bench_openvino.py                   # the full run
    python benchmarks/bench_openvino.py --models unet --runs 3        # one model, a quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtimes import Predictor  # noqa: E402
from runtimes.backends import RuntimeSpec  # noqa: E402
from runtimes.guards.fileio import write_text_atomic  # noqa: E402
from runtimes.measure.machine import cpu_info  # noqa: E402
from runtimes.backends.openvino_timing import openvino_runner, session_runner  # noqa: E402
from runtimes.measure.parity import sample_input  # noqa: E402
from runtimes.measure.timing import Runner, TimingStats, time_runners  # noqa: E402
from segedge.report import ReportRequest, run_report  # noqa: E402
from segedge.report.render import to_dict, write_report  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="deeplabv3plus,pspnet,unet")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--calib-count", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    results = {}
    for model in [m for m in args.models.split(",") if m]:
        results[model] = bench_model(model, args)
        write_outputs(results, args.out)  # after each model: a long run leaves what it measured
    print(summarize(results, flags()))  # bench_trained.py writes the same page from its full reports


def demo_cached(model: str) -> bool:
    """Demo weights are used where they are trained and cached already (training here takes long)."""
    from segedge.data.demo import cache_root
    from segedge.train.demo import demo_recipe

    try:
        return (cache_root() / "trained" / demo_recipe(model).key() / "metrics.json").is_file()
    except Exception:  # noqa: BLE001 - no recipe for the model, or the demo module not there: random weights
        return False


def bench_model(model: str, args: argparse.Namespace) -> dict:
    say = lambda message: print(f"[{model}] {message}", flush=True)  # noqa: E731
    weights = Path("demo") if demo_cached(model) else None
    # The zoo's U-Net is the paper's valid-mode network (188 + 16k pixels a side): 572 x 572, its own size;
    # the demo recipe trains the padded ("same") one, which takes 512.
    side = 572 if model == "unet" and weights is None else args.size
    folder = args.out / "openvino" / model
    with tempfile.TemporaryDirectory(prefix=f"segedge-ov-{model}-") as workdir:
        request = ReportRequest(target=model, output=Path(workdir), weights=weights, precisions=("fp32", "int8"),
                                runtimes=("onnxruntime", "openvino", "torch"), input_size=(side, side),
                                spec=RuntimeSpec(threads=args.threads), warmup=args.warmup, runs=args.runs,
                                calib_count=args.calib_count)
        report = run_report(request, progress=say)
        folder.mkdir(parents=True, exist_ok=True)
        rendered = to_dict(report, write_report(report, folder))
        nncf_ir = Path(report.files["int8-nncf"]) if "int8-nncf" in report.files else None
        say("the Predictor vs hand-tuned OpenVINO on NNCF's IR")
        overhead = predictor_overhead(nncf_ir, side, args) if nncf_ir is not None else {"error": "no NNCF IR"}
    return {"weights": "demo" if weights else "random", "report": rendered, "predictor": overhead}


def predictor_overhead(xml: Path, side: int, args: argparse.Namespace) -> dict:
    """One interleaved run: the adapter, hand-tuned OpenVINO, and the Predictor from image to mask."""
    predictor = Predictor(xml, runtime="openvino", threads=args.threads)
    size = (side, side)
    x = sample_input(predictor.card, 1, size, seed=0)
    # The image whose model input is the timed shape: a valid-mode model's input is its image plus the margin.
    inner = side - 2 * predictor.card.valid_margin
    image = np.random.default_rng(0).integers(0, 256, (inner, inner, 3), dtype=np.uint8)
    start = time.perf_counter()
    adapter = session_runner(predictor.session, time.perf_counter() - start, name="Predictor's adapter (model only)")
    tuned = openvino_runner(xml, x.shape, args.threads, name="hand-tuned OpenVINO (benchmark_app style)")
    end_to_end = Runner("Predictor.predict (uint8 image in, mask out)", adapter.runtime, "CPU",
                        run=lambda _: predictor.predict(image))
    rows = time_runners([adapter, tuned, end_to_end], lambda runner: x, 1, args.warmup, args.runs)
    stats = {r.name: r for r in rows if isinstance(r, TimingStats)}
    out = {"rows": [r.to_dict() for r in rows], "precision": getattr(predictor.session, "precision", "?")}
    if len(stats) == 3:
        model_ms, tuned_ms, e2e_ms = (stats[r.name].p50_ms for r in (adapter, tuned, end_to_end))
        out.update(adapter_ms=model_ms, tuned_ms=tuned_ms, predict_ms=e2e_ms,
                   adapter_vs_tuned=model_ms / tuned_ms, overhead_pct=100.0 * (e2e_ms - model_ms) / model_ms)
    return out


def flags() -> list[str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        known = cpu_info()["flags"]
        return [str(f) for f in known] if isinstance(known, list) else []
    line = next((ln for ln in text.splitlines() if ln.startswith("Flags:")), "")
    return line.split(":", 1)[1].split() if line else []


def write_outputs(results: dict, out: Path, source: str = "bench_openvino.py") -> None:
    all_flags = flags()
    write_text_atomic(out / "openvino.json", json.dumps({"models": results, "cpu_flags": all_flags, "source": source}, indent=2))
    write_text_atomic(out / "openvino.md", summarize(results, all_flags, source))


def summarize(results: dict, all_flags: list[str], source: str = "bench_openvino.py") -> str:
    cpu = next(iter(results.values()))["report"]["machine"]["cpu"] if results else {}
    amx = [f for f in all_flags if f.startswith("amx")]
    vnni = [f for f in all_flags if "vnni" in f or "bf16" in f]
    lines = [
        "# The fastest shippable path: OpenVINO behind the Predictor, int8 made for the runtime that runs it",
        "",
        f"CPU of the first section: {cpu.get('model', '?')}, {cpu.get('usable_cpus', '?')} usable CPUs; "
        f"{'AMX: ' + ' '.join(amx) if amx else '**no AMX**'}; {' '.join(vnni)}. 2 threads, batch 1, "
        "p50 over interleaved rounds (every row of a model in the same rounds). Each section names the CPU "
        "it ran on (a model measured again later may have run on another machine of this kind): compare "
        "ratios within a section.",
        "",
        f"`python benchmarks/{source}` (flags: see openvino.json). This CPU has no AMX, so the targets of "
        "issue 13 that need AMX (>= 12x PyTorch eager) cannot be met here; quoted instead: the ratio of the best "
        "shippable row to hand-tuned OpenVINO + NNCF in the same run.",
    ]
    for model, result in results.items():
        lines += ["", *model_section(model, result)]
    return "\n".join(lines) + "\n"


def _measured_on(report: dict) -> str:
    cpu = report.get("machine", {}).get("cpu", {})
    amx = "AMX" if any(f.startswith("amx") for f in cpu.get("flags", [])) else "no AMX"
    return f"Measured on: {cpu.get('model', '?')}, {cpu.get('usable_cpus', '?')} usable CPUs, {amx}; {' '.join(cpu.get('flags', []))}."


def model_section(model: str, result: dict) -> list[str]:
    report = result["report"]
    rows = [r for r in report["rows"] if r["status"] == "ok"]
    eager = next((r["p50_ms"] for r in rows if r["runtime"] == "torch"), None)
    weights = result["weights"]
    lines = [f"## {model} — {report['input_size'][0]}x{report['input_size'][1]}, weights: "
             + ("demo-trained (segedge.train.demo), mIoU on the held-out split" if weights == "demo"
                else "random (no demo weights cached here): accuracy cannot be judged, agreement only"), "",
             _measured_on(report), "",
             "| row | p50 ms | vs PyTorch eager | agreement with PyTorch fp32 | mIoU | points lost | shippable |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: r["p50_ms"]):
        speed = f"{eager / r['p50_ms']:.2f}x" if eager else ""
        agree = "" if r.get("agreement") is None else f"{r['agreement']:.2%}"
        miou = "" if r.get("miou") is None else f"{r['miou']:.4f}"
        lost = "" if r.get("miou_lost") is None else f"{r['miou_lost']:.2f}"
        ships = "yes" if r["runtime"] in ("onnxruntime", "openvino") else "baseline"
        lines.append(f"| {r['precision']} / {r['provider']} / {r['runtime']} | {r['p50_ms']:.1f} | {speed} | {agree} "
                     f"| {miou} | {lost} | {ships} |")
    failed = [r for r in report["rows"] if r["status"] != "ok"]
    lines += [f"| {r['precision']} / {r['provider']} / {r['runtime']} | failed: {r['reason']} | | | | | |" for r in failed]
    best = report.get("best")
    row, rule = (best.get("row"), best.get("rule", "")) if isinstance(best, dict) else (best, report.get("best_reason", ""))
    lines += ["", f"Verdict: **{row or 'none'}** — {rule}"]
    shippable = [r for r in rows if r["runtime"] in ("onnxruntime", "openvino")]
    p = result["predictor"]
    if "adapter_ms" in p:
        fastest = min(shippable, key=lambda r: r["p50_ms"]) if shippable else None
        lines += ["", f"NNCF's IR, second interleaved run: the Predictor's adapter {p['adapter_ms']:.1f} ms, hand-tuned "
                      f"OpenVINO {p['tuned_ms']:.1f} ms (adapter / hand-tuned {p['adapter_vs_tuned']:.3f}); "
                      f"Predictor.predict end to end {p['predict_ms']:.1f} ms: overhead {p['overhead_pct']:.1f}% of "
                      f"the model's time (inference precision {p['precision']})."]
        if fastest is not None and eager:
            lines.append(f"Fastest shippable row: {fastest['precision']} / {fastest['provider']} / {fastest['runtime']}, "
                         f"{eager / fastest['p50_ms']:.2f}x PyTorch eager.")
    elif p:
        lines += ["", f"Predictor overhead not measured: {p.get('error')}"]
    return lines


if __name__ == "__main__":
    main()
