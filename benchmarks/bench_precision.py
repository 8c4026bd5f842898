"""Precision benchmark: what fp16 and int8 cost in accuracy and gain in speed, on a trained model.

    python benchmarks/bench_precision.py [--config full|small] [--size 512] [--runs 30] [--threads N]

1. The demo model (`segedge.train.recipe.FULL`: a U-Net trained on the shapes dataset; cached under
   $SEGEDGE_CACHE or ~/.cache/segedge) is exported to fp32 ONNX, then converted with
   `segedge.quantize.run` to fp16 and to int8 (32 calibration images of the train split).
2. Accuracy on the held-out val split: mIoU of PyTorch, fp32, fp16 and int8, mIoU points lost,
   argmax agreement with fp32 and the lowest per-class IoU between the label maps.
3. Speed: ONNX Runtime CPU sessions of the three files timed in interleaved rounds
   (`runtimes.measure.timing.time_runners`) on a --size x --size input, with the CPU's flags.
Results: benchmarks/results/precision.md and .json (or --out). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporters.int8 import quantized_convs
from runtimes.measure.timing import Runner, time_runners
from runtimes.guards.fileio import write_text_atomic
from runtimes.measure.machine import machine_record, usable_cpus
from runtimes.backends.onnxruntime_session import open_session
from segedge.export.run import ExportRequest, run_export
from runtimes.model.precision import Precision
from segedge.quantize import QuantizeRequest, run_quantize
from segedge.train.recipe import FULL, SMALL, trained_model

CALIB_COUNT = 32
NOTES = [
    "Notes:",
    ("- fp16 gains nothing on this CPU: ONNX Runtime's CPU provider has no fp16 convolution kernels for x86, so "
     "the graph runs fp32 kernels between casts; fp16 halves the file and is for GPUs (CUDA, TensorRT) and NPUs."),
    ("- int8 runs the 19 convolutions as QLinearConv (VNNI u8 x s8 dot products); the 4 up-convolutions "
     "(ConvTranspose) keep int8 weights but run in float between DequantizeLinear/QuantizeLinear, as the CPU "
     "provider has no int8 ConvTranspose kernel; with the layout transposes around them they cap the gain. Narrow "
     "layers gain least: in probes while choosing this model, a U-Net with 16 base channels gained 2.4x "
     "single-threaded, one with 24 3.0x."),
]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_models(trained, folder: Path) -> dict[str, Path]:
    files = {p: folder / f"demo_{p}.onnx" for p in ("fp32", "fp16", "int8")}
    log("exporting fp32")
    run_export(ExportRequest(source=trained.config.model, output=files["fp32"], weights=trained.checkpoint,
                             input_size=trained.config.data.size, build_options=trained.build_options,
                             card_fields={"classes": trained.classes}))
    return files


def convert(files: dict[str, Path], data: Path) -> dict[str, object]:
    results = {}
    for precision in ("fp16", "int8"):
        log(f"converting to {precision} and measuring it on the val split")
        request = QuantizeRequest(model=files["fp32"], precision=Precision(precision), output=files[precision],
                                  calib=data if precision == "int8" else None, calib_count=CALIB_COUNT, data=data)
        results[precision] = run_quantize(request)
    return results


def timings(files: dict[str, Path], size: int, threads: int, runs: int) -> dict[str, dict]:
    sessions = {p: open_session(f, "cpu", threads, spinning=False) for p, f in files.items()}  # shared rounds
    runners = [Runner(p, "onnxruntime", "cpu", s.run) for p, s in sessions.items()]
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    log(f"timing fp32 / fp16 / int8 at {size}x{size}, {threads} threads, {runs} interleaved rounds")
    stats = time_runners(runners, lambda runner: x, batch=1, warmup=5, runs=runs)
    return {s.name: s.to_dict() for s in stats}


def contention_note(rows: dict[int, dict]) -> list[str]:
    """Say so when fp32 gained nothing from a second thread: the machine's other jobs held that core."""
    counts = sorted(rows)
    if len(counts) < 2 or rows[counts[-1]]["fp32"]["p50_ms"] < 0.9 * rows[counts[0]]["fp32"]["p50_ms"]:
        return []
    return [(f"- fp32 was no faster with {counts[-1]} threads than with {counts[0]}: the machine is shared and its "
             "other jobs held the second core (load average above), so the multi-thread rows understate what "
             "a free machine gives; the single-thread rows are the reliable ones here.")]


def table(report: dict) -> str:
    cpu = report["machine"]["cpu"]
    train = report["train"]
    data = train["config"]["data"]
    lines = [
        f"# Precision: fp32 / fp16 / int8 on a trained model ({report['model']})",
        "",
        (f"Trained on the shapes dataset ({data['train']} images of {data['size'][0]}x{data['size'][1]}, "
        f"{train['config']['steps']} steps, {train['train_seconds']:.0f} s on one core); accuracy on the "
        f"{report['images']} held-out val images at their own size; latency of one {report['size']}x{report['size']} "
        f"image (batch 1), ONNX Runtime {report['machine']['versions'].get('onnxruntime')} CPU, "
        f"{report['runs']} interleaved rounds after 5 warm-up runs."),
        f"CPU: {cpu['model']}, {cpu['usable_cpus']} usable CPUs, flags: {' '.join(cpu['flags'])}.",
        "",
        "| precision | mIoU | drop (points) | argmax agree vs fp32 | min class IoU vs fp32 | MB |"
        + "".join(f" p50 ms ({t} thr) | speed-up ({t} thr) |" for t in report["threads"]),
        "|---|---|---|---|---|---|" + "---|---|" * len(report["threads"]),
        f"| PyTorch fp32 | {train['miou']:.4f} | - | - | - | - |" + " - | - |" * len(report["threads"]),
    ]
    for precision in ("fp32", "fp16", "int8"):
        acc = report["accuracy"].get(precision)
        if acc is None:  # fp32 against itself
            cells = f"| fp32 | {report['miou_fp32']:.4f} | - | - | - | {report['sizes_mb']['fp32']:.2f} |"
        else:
            cells = (f"| {precision} | {acc['miou']:.4f} | {acc['miou_drop_points']:.2f} | {acc['argmax_agreement']:.4%} | "
                     f"{acc['min_class_iou']:.4f} | {report['sizes_mb'][precision]:.2f} |")
        for t in report["threads"]:
            rows = report["rows"][str(t)] if str(t) in report["rows"] else report["rows"][t]
            p50 = rows[precision]["p50_ms"]
            cells += f" {p50:.1f} | {rows['fp32']['p50_ms'] / p50:.2f}x |"
        lines.append(cells)
    lines += ["", (f"int8: {report['int8_convs']} convolutions quantized (QDQ, int8 per-channel weights, uint8 "
              f"activations, {report['calibration']['method']} on {report['calibration']['images']} train images).")]
    load = report.get("load_average")
    if load:
        lines += ["", f"Load average during the run: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min)."]
    lines += ["", *report["notes"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("full", "small"), default="full")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", default=None, help="Comma-separated thread counts (default: 1 and the usable CPUs).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "precision")
    args = parser.parse_args()
    config = FULL if args.config == "full" else SMALL
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, usable_cpus()})
    log(f"training (or loading from the cache) {config.key()}")
    trained = trained_model(config, progress=log)
    data = trained.data
    with tempfile.TemporaryDirectory(prefix="segedge-bench-precision-") as workdir:
        files = make_models(trained, Path(workdir))
        converted = convert(files, data)
        rows = {t: timings(files, args.size, t, args.runs) for t in threads}
        import onnx

        int8 = onnx.load(str(files["int8"]))
        report = {
            "model": f"{config.model} {config.build_kwargs}",
            "train": trained.metrics,
            "images": converted["int8"].agreement.images,
            "miou_fp32": converted["int8"].agreement.miou_reference,
            "accuracy": {p: r.agreement.to_dict() for p, r in converted.items()},
            "passed": {p: r.passed for p, r in converted.items()},
            "calibration": converted["int8"].card.calibration,
            "int8_convs": f"{quantized_convs(int8)} of {converted['int8'].card.calibration['convs']}",
            "sizes_mb": {p: f.stat().st_size / 2**20 for p, f in files.items()},
            "size": args.size, "threads": threads, "runs": args.runs,
            "rows": rows,
            "machine": machine_record(),
            "load_average": os.getloadavg(),
            "notes": NOTES + contention_note(rows),
        }
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(report, indent=1))
    write_text_atomic(args.out.with_suffix(".md"), table(report))
    print(table(report))


if __name__ == "__main__":
    main()
