"""Issue 30 point 5: plain int8 against segedge's repaired int8, per demo-trained model and per runtime.

    python benchmarks/bench_precision_repair.py [--models unet,segformer_b0] [--backends litert] [--budgets 1,0.1]

For each model with `--weights demo` (segedge's recipe, trained once and cached: run it after the
cache holds them) the fp32 export, then for each quantizer (`segedge.quantize.adapters`):

- ONNX Runtime QDQ (uint8 activations, int8 per-channel weights), run by ONNX Runtime;
- NNCF for OpenVINO (an IR), run by OpenVINO;
- ORT's QNN config (static shape, uint16 activations, uint8 weights), verified on ORT's CPU QDQ
  kernels: the HTP is not here, so its rows have mIoU but no p50.

plain int8 (the quantizer's defaults) and the repair search (`segedge.quantize.repair`, the same one
`quantize --precision auto` and the report run) are scored on the demo data's held-out images
(mIoU, points lost against the fp32 file); the search stops at the first candidate within
`--budget` mIoU points. Then fp32, plain and repaired files are timed in the same interleaved
rounds (2 threads, ORT without spin-waiting). Writes benchmarks/results/precision_repair.md and
.json, with the CPU's flags and the load average before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporters.calibration import calibration_images  # noqa: E402
from runtimes.errors import ExportError  # noqa: E402
from runtimes.guards.fileio import write_text_atomic  # noqa: E402
from runtimes.measure.machine import cpu_info  # noqa: E402
from runtimes.model.precision import Precision  # noqa: E402
from runtimes.backends.onnxruntime_session import open_session  # noqa: E402
from runtimes.measure.timing import Runner, TimingStats, ort_runner, time_runners  # noqa: E402
from segedge.data.demo import cache_root, with_demo_data  # noqa: E402
from segedge.quantize.adapters import Backend  # noqa: E402
from segedge.quantize.convert import sample_source  # noqa: E402
from segedge.quantize.judging import budget_judge  # noqa: E402
from segedge.quantize.repair import Repair, repair  # noqa: E402
from segedge.quantize.sensitivity import MOST_UNITS  # noqa: E402
from segedge.quantize.request import QuantizeRequest  # noqa: E402
from segedge.quantize.sensitivity_run import SensitivityRequest, adapter_for, reference_runner  # noqa: E402
from segedge.train.demo import RECIPES, demo_model  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CALIB_COUNT = 32
DEFAULT_MODELS = tuple(RECIPES)  # every zoo model with a demo recipe (segedge.train.demo)
SMALL_UNET = "unet-small"  # segedge.train.recipe.SMALL: the precision tests' demo-trained U-Net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--backends", default="onnxruntime,openvino,qnn,executorch,litert")
    parser.add_argument("--budgets", type=lambda text: [float(v) for v in text.split(",")], default=[1.0, 0.1],
                        help="mIoU points; each gets its own search (the tight one shows what a repair costs)")
    parser.add_argument("--data-limit", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=MOST_UNITS,
                        help="the ranking's most units (a larger graph is ranked per block): bounds a search's cost")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--summary-only", action="store_true", help="rewrite the .md from the .json, measure nothing")
    args = parser.parse_args()
    if args.summary_only:
        resummarize(args.out)
        return
    load_before = os.getloadavg()
    results = {}
    for model in args.models.split(","):
        results[model] = bench_model(model, [Backend(b) for b in args.backends.split(",")], args)
        print(json.dumps(results[model], indent=1)[:2000], flush=True)
    record = {"models": results, "budgets": args.budgets, "cpu": cpu_info(), "load_before": load_before,
              "load_after": os.getloadavg(), "threads": args.threads, "runs": args.runs}
    for model in results:  # each model's run records its own load: models are measured at different times
        results[model]["load"] = {"before": load_before, "after": record["load_after"]}
    earlier = args.out / "precision_repair.json"
    if earlier.is_file():  # a rerun of some models or runtimes keeps the other rows
        record["models"] = merged(json.loads(earlier.read_text()).get("models", {}), results)
    write_text_atomic(args.out / "precision_repair.json", json.dumps(record, indent=2))
    write_text_atomic(args.out / "precision_repair.md", summarize(record))


def merged(earlier: dict, results: dict) -> dict:
    """`results` over `earlier`, row by row (model, runtime, budget): a rerun of one runtime keeps the others'.
    The demo U-Net's rows replace those of the precision tests' U-Net (unet-small), measured before it was trained."""
    models = {m: dict(r) for m, r in earlier.items() if not (m == SMALL_UNET and "unet" in results)}
    for model, result in results.items():
        fresh = {(r["runtime"], r["budget"]) for r in result["rows"]}
        before = models.get(model, {})
        kept = [r for r in before.get("rows", []) if (r["runtime"], r["budget"]) not in fresh]
        for row in kept:  # rows measured in an earlier run keep the load they were measured under
            row.setdefault("load", before.get("load"))
        models[model] = {**before, **result, "rows": kept + result["rows"]}
    return models


def bench_model(model: str, backends: list[Backend], args: argparse.Namespace) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-repair-") as workdir:
        work = Path(workdir)
        fp32 = work / f"{model}_fp32.onnx"
        trained, calib, data = _export(model, fp32)
        card = open_session(fp32, "cpu").card
        assert calib is not None and data is not None
        images = calibration_images(calib, CALIB_COUNT)
        request = SensitivityRequest(fp32, tuple(backends), calib, CALIB_COUNT, data, args.data_limit)
        samples = sample_source(QuantizeRequest(model=fp32, precision=Precision.int8, calib=calib, calib_count=CALIB_COUNT,
                                                data=data, data_limit=args.data_limit), card, images)
        count = sum(1 for _ in samples[0]())
        for backend in backends:
            for budget in args.budgets:
                folder = work / f"{backend.value}-{budget:g}"
                folder.mkdir()
                print(f"[{model}] {backend.value}, budget {budget:g}", flush=True)
                try:
                    rows.append(_row(model, backend, budget, request, fp32, card, images, samples, count, folder, args))
                except ExportError as exc:  # this quantizer cannot make the model's int8: a row that says why
                    print(f"[{model}] {backend.value}: {exc}", flush=True)
                    rows.append({"runtime": backend.value, "budget": budget, "failed": str(exc),
                                 "load": {"before": list(os.getloadavg()), "after": list(os.getloadavg())}})
    return {"held_out_miou_training": trained.metrics.get("miou"), "images": count, "input_size": list(card.input_size),
            "rows": rows}


def _row(model: str, backend: Backend, budget: float, request: SensitivityRequest, fp32: Path, card, images,
         samples, count: int, folder: Path, args: argparse.Namespace) -> dict:
    load = os.getloadavg()
    adapter, reference, view = adapter_for(backend, request, fp32, card, images, folder)
    judge = budget_judge(reference_runner(reference), view, samples, budget)
    start = time.perf_counter()
    result = repair(adapter, judge, count, folder, lambda m: print(f"[{model}] {m}", flush=True),
                    most_units=args.blocks)
    seconds = time.perf_counter() - start
    plain, best = result.steps[0], result.best
    timing = _timing(backend, reference, result, args) if backend is not Backend.qnn else {}
    return {
        "runtime": backend.value, "budget": budget, "kept_as": adapter.higher,
        "miou_fp32": plain.measured.details.get("miou_reference"),
        "plain": {"lost_points": plain.measured.lost, "miou": plain.measured.miou, "ok": plain.measured.ok},
        "repaired": {"step": best.name, "lost_points": best.measured.lost, "miou": best.measured.miou,
                     "ok": best.measured.ok, "kept_layers": list(best.candidate.kept_layers),
                     "method": best.candidate.method, "weights": best.candidate.weights, "reproduce": best.reproduce},
        "steps": [{**s.to_dict(), "p50_ms": timing.get("p50_ms", {}).get("steps", {}).get(s.name)} for s in result.steps],
        "sensitivity_cost": result.sensitivity.cost if result.sensitivity else None,
        "sensitivity": result.record()["sensitivity"],  # every unit: points lost with it alone kept higher, recovered
        "calibration_passes": adapter.calibrations, "search_seconds": round(seconds, 1),
        "load": {"before": list(load), "after": list(os.getloadavg())}, **timing}


def _export(model: str, fp32: Path) -> tuple:
    """(the trained model, calibration folder, labelled folder) with `fp32` exported. `unet-small` is the
    precision tests' U-Net (segedge.train.recipe.SMALL, 64 x 64), cached beside the demo weights."""
    if model == SMALL_UNET:
        from segedge.export.run import ExportRequest, run_export
        from segedge.train.recipe import SMALL, trained_model

        trained = trained_model(SMALL, cache_root())
        run_export(ExportRequest(source=trained.config.model, output=fp32, weights=trained.checkpoint,
                                 input_size=trained.config.data.size, build_options=trained.build_options,
                                 card_fields={"classes": trained.classes}))
        return trained, trained.data, trained.data
    trained = demo_model(model, lambda message: print(f"[{model}] {message}", flush=True))
    subprocess.run([sys.executable, "-m", "segedge", "export", model, "--weights", "demo", "-o", str(fp32)],
                   check=True, capture_output=True)
    calib, data = with_demo_data(open_session(fp32, "cpu").card, None, None)
    return trained, calib, data


def _timing(backend: Backend, fp32: Path, result: Repair, args: argparse.Namespace) -> dict:
    """fp32 and every step's file that was built, timed in the same interleaved rounds (issue 30: each step's
    speed); `plain` is the start's p50, `repaired` the chosen (else best) step's."""
    built = {s.name: s.path for s in result.steps if s.path.is_file()}
    files = {"fp32": fp32, **built}
    runners = [_runner(backend, path, name, args.threads) for name, path in files.items()]
    x = np.random.default_rng(0).standard_normal((1, 3, *_input_size(fp32))).astype(np.float32)
    stats = time_runners(runners, lambda runner: x, batch=1, warmup=3, runs=args.runs)
    p50 = {name: s.p50_ms if isinstance(s, TimingStats) else None for name, s in zip(files, stats)}
    steps = {name: p50[name] for name in built}
    return {"p50_ms": {"fp32": p50["fp32"], "plain": steps.get(result.steps[0].name),
                       "repaired": steps.get(result.best.name), "steps": steps}}


def _input_size(path: Path) -> tuple[int, int]:
    from runtimes.backends import RuntimeSpec, backend_for_path

    backend = backend_for_path(path)  # the .onnx, ExecuTorch's .pte or LiteRT's .tflite
    return backend.open(path, RuntimeSpec(backend.name), {}).card.input_size


def _runner(backend: Backend, path: Path, name: str, threads: int) -> Runner:
    if backend in (Backend.executorch, Backend.litert):  # through the registry backend, as the Predictor and report run it
        from runtimes.backends import backend_named, open_runner
        from runtimes.backends.base import RuntimeSpec

        return backend_named(backend.value).timing_runner(
            open_runner(path, RuntimeSpec(runtime=backend.value, threads=threads)), 0.0, name=name)
    if backend is Backend.openvino:  # the fp32 .onnx too: each runtime times its own files
        from runtimes.backends.openvino_timing import session_runner
        from runtimes.backends.openvino_session import open_openvino

        return session_runner(open_openvino(path, threads=threads), 0.0, name=name)
    return ort_runner(open_session(path, threads=threads, spinning=False), 0.0, name=name)


def summarize(record: dict) -> str:
    cpu = record["cpu"]
    lines = ["# int8, plain against repaired (issue 30)", "",
             "`python benchmarks/bench_precision_repair.py`: per demo-trained model and runtime, plain int8 (the "
             "quantizer's defaults) and segedge's repair search (`segedge.quantize.repair`: calibration method, "
             f"weight scheme, then layers kept in higher precision), within each budget (mIoU points against the "
             f"fp32 file: {', '.join(f'{b:g}' for b in record['budgets'])}), scored on the demo data's held-out images. p50: fp32, plain and repaired in one "
             f"interleaved run, {record['threads']} threads, {record['runs']} runs; QNN rows are verified on ORT's "
             "CPU QDQ kernels and not timed (the HTP is not here).", "",
             f"- CPU: {cpu.get('model')}, {cpu.get('usable_cpus')} usable CPUs; flags: {' '.join(cpu.get('flags') or [])}",
             "- a shared machine (2 cores, several engineers' jobs): p50 ratios only, and noisy; the load of each "
             "model's run is listed below the table", "",
             "| model | runtime | budget | fp32 mIoU | plain: lost | repaired: step | repaired: lost | layers kept | "
             "p50 repaired / plain | p50 plain / fp32 | search |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, result in record["models"].items():
        for row in result["rows"]:
            if "failed" in row:
                lines.append(f"| {model} | {row['runtime']} | {row['budget']:g} | - | failed: {row['failed']} | - | - | "
                             "- | - | - | - |")
                continue
            p50 = row.get("p50_ms") or {}
            ratio = (f"{p50['repaired'] / p50['plain']:.2f}" if p50.get("plain") and p50.get("repaired") else "n/a")
            speed = (f"{p50['plain'] / p50['fp32']:.2f}" if p50.get("plain") and p50.get("fp32") else "n/a")
            kept = ", ".join(row["repaired"]["kept_layers"])
            kept = f"{kept} ({row['kept_as']})" if kept else "-"
            needed = row["repaired"]["step"] if not row["plain"]["ok"] else "(plain passes)"
            needed += "" if row["repaired"]["ok"] else " (best; none within budget)"
            lines.append(f"| {model} | {row['runtime']} | {row['budget']:g} | {_num(row['miou_fp32'], '.4f')} | "
                         f"{row['plain']['lost_points']:.2f} | {needed} | {row['repaired']['lost_points']:.2f} | "
                         f"{kept} | {ratio} | {speed} | {row['search_seconds']} s, "
                         f"{row['calibration_passes']} calibration pass(es) |")
    lines += ["", "Each step of the searches that went past plain int8: points lost, p50 / plain int8 (same interleaved "
              "run; n/a: not timed, as on QNN):", ""]
    for model, result in record["models"].items():
        for row in result["rows"]:
            if len(row.get("steps", ())) > 1:
                plain = (row.get("p50_ms") or {}).get("plain")
                parts = [f"{s['step']}: {_num(s.get('lost_points'), '.2f')}, "
                         f"{_num(s['p50_ms'] / plain if s.get('p50_ms') and plain else None, '.2f')}"
                         for s in row["steps"]]
                lines.append(f"- {model}, {row['runtime']}, budget {row['budget']:g}: " + "; ".join(parts))
    if not any(len(row.get("steps", ())) > 1 for result in record["models"].values() for row in result["rows"]):
        lines.append("- none: plain int8 was within the budget in every row above (each row's p50 is its start's)")
    lines += ["", "Load average (1, 5, 15 min) around each model's run:", ""]
    for model, result in record["models"].items():
        for row in result["rows"]:
            load = row.get("load") or result.get("load")
            if load:
                lines.append(f"- {model}, {row['runtime']}, budget {row['budget']:g}: before {_load(load['before'])}, "
                             f"after {_load(load['after'])}")
    runtimes = [b.value for b in Backend]
    for model, result in record["models"].items():
        absent = [r for r in runtimes if r not in {row["runtime"] for row in result["rows"]}]
        if absent and model != SMALL_UNET:
            lines += ["", f"{model}: no {', '.join(absent)} row yet."]
    missing = [m for m in DEFAULT_MODELS if m not in record["models"]]
    if missing:
        lines += ["", f"Not measured yet: {', '.join(missing)} (not trained by their demo recipes on this machine yet)."]
    lines += ["", "ExecuTorch rows: PT2E (XNNPACKQuantizer) on the PyTorch model the card records, each candidate a static "
              ".pte lowered to XNNPACK at the demo images' size (96 x 96, `segedge.quantize.sensitivity_run`), judged "
              "against the fp32 program on ExecuTorch and timed there (fp32 = that program); the other runtimes' p50 "
              "are at the card's input size, so compare ratios within a row, not p50 across runtimes."]
    lines += ["", "LiteRT rows: ai-edge-quantizer's static_wi8_ai8 on the float .tflite litert-torch converts from the same "
              "PyTorch model at 96 x 96 (`segedge.quantize.adapters.litert_aeq`), each candidate run and timed on LiteRT's "
              "interpreter with XNNPACK against that float file (fp32 = it). At the 0.1-point budget the repair roughly "
              "halves the loss within its 8 layer steps and no step reaches the budget; every float layer leaves an "
              "XNNPACK int8 partition (the p50 column). A likely floor: the recipe keeps the input and output tensors "
              "int8, a rounding no kept layer removes (on the tests' outlier model, every layer in float still "
              "leaves 1.6 argmax points)."]
    lines += ["", "QNN rows compare with the static-shape fp32 graph the QNN target quantizes (the card's input size, "
              "the demo images resized to it), so their fp32 mIoU differs from the dynamic file's."]
    lines += ["", "A calibration or weight-scheme step changes scales only, not which ops run in int8: its p50 ratio "
              "to plain int8 should be 1.00, and how far it is from 1.00 is the timing noise of that run.",
              "", "Each row's steps (candidate, mIoU, points lost, seconds) are in precision_repair.json."]
    return "\n".join(lines) + "\n"


def resummarize(out: Path) -> None:
    """precision_repair.md again from the .json (after a change to this summary)."""
    write_text_atomic(out / "precision_repair.md", summarize(json.loads((out / "precision_repair.json").read_text())))


def _load(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in values) + ")"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


if __name__ == "__main__":
    main()
