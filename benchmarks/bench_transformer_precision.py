"""Issue 16 point 4: what int8 and fp16 cost a demo-trained transformer, and what must stay in float.

    python benchmarks/bench_transformer_precision.py [--models segformer_b0,upernet_swin_t]

For each model with `--weights demo` (segedge's recipe, trained once and cached): the fp32 export,
then each way of making it smaller, all scored on the same 100 held-out images (mIoU, points lost
against the fp32 file, argmax agreement with it) and counted (which compute ops run in int8 and
which stay float, from the file itself):

- int8 on ONNX Runtime: segedge's rule (LayerNorm, Softmax, GELU and attention's MatMuls in
  float: `exporters.int8_float`) against everything ONNX Runtime can quantize;
- int8 for OpenVINO: NNCF as ModelType.TRANSFORMER (segedge's choice for graphs with attention)
  against NNCF's default type, both run by OpenVINO;
- fp16 on ONNX Runtime (every op in float16 but the converter's block list) and OpenVINO's bf16
  hint on the fp32 IR.

Calibration: 32 images of the train split, as `segedge quantize` takes them. Then every file is
timed at 512x512 in the same interleaved rounds (`runtimes.measure.timing.time_runners`, 2 threads, ORT
without spin-waiting), so the speed each rule buys is measured beside what it costs. Writes
benchmarks/results/transformer_precision.md and .json, with the CPU's flags. The report's rows
against PyTorch eager and torch.compile are bench_trained.py's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporters.fp16 import convert_fp16  # noqa: E402
from exporters.int8 import quantize_int8  # noqa: E402
from exporters.nncf_int8 import quantize_nncf  # noqa: E402
from runtimes.guards.fileio import write_text_atomic  # noqa: E402
from runtimes.measure.machine import cpu_info  # noqa: E402
from runtimes.predictor import Predictor  # noqa: E402
from runtimes.backends.onnxruntime_session import open_session  # noqa: E402
from runtimes.measure.timing import Runner, ort_runner, time_runners  # noqa: E402
from segedge.data.labelled import labelled_pairs, read_pair  # noqa: E402
from runtimes.measure.metrics import ConfusionMatrix  # noqa: E402
from segedge.data.shapes import IGNORE_INDEX  # noqa: E402
from segedge.train.demo import demo_model  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CALIB_COUNT = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="segformer_b0,upernet_swin_t")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = {}
    for model in [m for m in args.models.split(",") if m]:
        with tempfile.TemporaryDirectory(prefix=f"segedge-tprec-{model}-") as workdir:
            results[model] = measure(model, Path(workdir), args)
        print(json.dumps(results[model], indent=1), flush=True)
    flags = cpu_info()["flags"]
    write_text_atomic(args.out / "transformer_precision.json", json.dumps({"models": results, "cpu_flags": flags}, indent=2))
    write_text_atomic(args.out / "transformer_precision.md", summarize(results, flags))


def measure(model: str, workdir: Path, args: argparse.Namespace) -> dict:
    threads = args.threads
    trained = demo_model(model, lambda message: print(f"[{model}] {message}", flush=True))
    fp32 = workdir / "fp32.onnx"
    subprocess.run([sys.executable, "-m", "segedge", "export", model, "--weights", "demo", "-o", str(fp32)], check=True)
    calib, pairs = trained.data, labelled_pairs(trained.data)
    card = Predictor(fp32).card
    files: dict[str, tuple[Path, str | None, str | None, Callable[[], dict]]] = {}

    def ort_int8(name: str, transformer_float: bool) -> dict:
        return quantize_int8(fp32, workdir / f"{name}.onnx", calib, count=CALIB_COUNT,
                             transformer_float=transformer_float).card.calibration

    def nncf_int8(name: str, transformer: bool) -> dict:
        return quantize_nncf(fp32, workdir / f"{name}.xml", calib, card=card, count=CALIB_COUNT,
                             transformer=transformer).calibration

    files["fp32 / ONNX Runtime"] = (fp32, None, None, dict)
    files["int8 / ONNX Runtime, segedge's rule"] = (workdir / "ort_rule.onnx", None, None, lambda: ort_int8("ort_rule", True))
    files["int8 / ONNX Runtime, everything ORT quantizes"] = (workdir / "ort_all.onnx", None, None, lambda: ort_int8("ort_all", False))
    files["int8 / OpenVINO, NNCF TRANSFORMER"] = (workdir / "nncf_t.xml", "openvino", None, lambda: nncf_int8("nncf_t", True))
    files["int8 / OpenVINO, NNCF default type"] = (workdir / "nncf_d.xml", "openvino", None, lambda: nncf_int8("nncf_d", False))
    files["fp16 / ONNX Runtime"] = (workdir / "fp16.onnx", None, None, lambda: {"path": str(convert_fp16(fp32, workdir / "fp16.onnx"))})
    files["bf16 / OpenVINO (fp32 file, bf16 hint)"] = (fp32, "openvino", "bf16", dict)

    reference = None
    rows, timed = [], []
    for label, (path, runtime, hint, make) in files.items():
        print(f"[{model}] {label}", flush=True)
        facts = make()
        predictor = Predictor(path, threads=threads, runtime=runtime, openvino_hint=hint)
        matrix = ConfusionMatrix(len(trained.classes), IGNORE_INDEX)
        masks = []
        for image, truth in pairs:
            rgb, mask = read_pair(image, truth)
            predicted = predictor.predict(rgb)
            matrix.update(mask, predicted)
            masks.append(predicted)
        if reference is None:
            reference = masks
        agreement = float(np.mean([np.mean(a == b) for a, b in zip(reference, masks)]))
        rows.append({"file": label, "miou": float(matrix.mean_iou()), "agreement": agreement,
                     "int8_ops": facts.get("int8_ops", {}), "float_ops": facts.get("float_ops", {}),
                     "model_type": facts.get("model_type")})
        timed.append(_runner(path, runtime, hint, threads, label))
    base = rows[0]["miou"]
    print(f"[{model}] timing every file at {args.size}x{args.size}", flush=True)
    x = np.random.default_rng(0).standard_normal((1, 3, args.size, args.size)).astype(np.float32)
    for row, timing in zip(rows, time_runners(timed, lambda runner: x, 1, warmup=args.warmup, runs=args.runs)):
        row["points_lost"] = round(100 * (base - row["miou"]), 2)
        row["p50_ms"] = timing.p50_ms if timing.ok else None
    fp32_ms = rows[0]["p50_ms"]
    for row in rows:
        row["x_fp32"] = round(fp32_ms / row["p50_ms"], 2) if fp32_ms and row["p50_ms"] else None
    return {"weights": f"demo: {trained.config.key()}, held-out mIoU {trained.metrics['miou']:.4f}",
            "held_out_images": len(pairs), "calibration_images": CALIB_COUNT, "size": args.size,
            "runs": args.runs, "threads": threads, "cpu": cpu_info(), "rows": rows}


def _runner(path: Path, runtime: str | None, hint: str | None, threads: int, name: str) -> Runner:
    """The file's session as the report times it: ONNX Runtime without spin-waiting, or OpenVINO."""
    if runtime == "openvino":
        from runtimes.backends.openvino_timing import session_runner
        from runtimes.backends.openvino_session import open_openvino

        return session_runner(open_openvino(path, threads, hint=hint), 0.0, name=name)
    return ort_runner(open_session(path, threads=threads, spinning=False), 0.0, name=name)


def summarize(results: dict, flags: object) -> str:
    cpu = cpu_info()
    lines = ["# Transformers in int8 and fp16: what stays float, what it costs (demo-trained weights)", "",
             "`python benchmarks/bench_transformer_precision.py`. mIoU on each model's 100 held-out images "
             "(96x96), points lost and argmax agreement against its fp32 ONNX file on ONNX Runtime; op counts "
             f"read from each file. Calibration: {CALIB_COUNT} train-split images.", "",
             f"- CPU: {cpu.get('model')}, {cpu.get('usable_cpus')} usable CPUs; flags: {' '.join(flags) if isinstance(flags, list) else flags}",
             ""]
    for model, result in results.items():
        lines += [f"## {model} ({result['weights']})", "",
                  f"p50 at {result['size']}x{result['size']}, {result['threads']} threads, {result['runs']} interleaved rounds.", "",
                  "| file | mIoU | points lost | agreement | p50 ms | x fp32 ORT | int8 ops | float ops |",
                  "|---|---:|---:|---:|---:|---:|---|---|"]
        for row in result["rows"]:
            p50 = f"{row['p50_ms']:.1f}" if row.get("p50_ms") else "failed"
            speed = f"{row['x_fp32']:.2f}x" if row.get("x_fp32") else ""
            lines.append(f"| {row['file']} | {row['miou']:.4f} | {row['points_lost']:.2f} | {row['agreement']:.2%} | "
                         f"{p50} | {speed} | {_ops(row['int8_ops'])} | {_ops(row['float_ops'])} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _ops(counts: dict[str, int]) -> str:
    return ", ".join(f"{op} {n}" for op, n in counts.items()) or "-"


if __name__ == "__main__":
    sys.exit(main())
