"""Issue 4's benchmark: `segedge report` of deeplabv3plus and unet on this CPU.

Both have random weights, so a third report runs issue 6's small U-Net trained on the shapes
dataset, calibrated on its training images, with mIoU on its held-out split (`--no-trained` skips it).

fp32 and int8; ONNX Runtime's CPU provider, OpenVINO's runtime on the same ONNX files, PyTorch
eager and torch.compile; all rows of one model timed in the same interleaved rounds. Writes
benchmarks/results/report_<model>/{report.md,report.json,latency_vs_accuracy.png} and a summary
benchmarks/results/report.md naming each model's best row. The ONNX files stay in a temp folder.

With `--ovep-python PATH` (a second venv holding onnxruntime-openvino, which conflicts with
onnxruntime and so cannot share the first one), ONNX Runtime's OpenVINO execution provider is
timed on the very same files too, in a subprocess: those rows are not interleaved with the others.
That venv needs no torch:

    python -m venv .venv-ovep
    .venv-ovep/bin/pip install onnxruntime-openvino numpy psutil Pillow "typer>=0.29,<1" rich

    python benchmarks/bench_report.py                      # the full run: 512x512 (unet: its card size)
    python benchmarks/bench_report.py --size 128 --runs 3  # a quick end-to-end check
    python benchmarks/bench_report.py --ovep-python .venv-ovep/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from runtimes.backends import RuntimeSpec
from runtimes.guards.fileio import write_text_atomic
from runtimes.imaging.preprocess import model_side
from segedge.report import ReportRequest, run_report
from segedge.report.render import write_report
from segedge.sources import build

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="deeplabv3plus,unet")
    parser.add_argument("--size", type=int, default=None, help="square input side (default: each model's card size)")
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--runtimes", default="onnxruntime,openvino,torch,compile")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--calib", type=Path, default=None, help="calibration images (default: generated shapes images)")
    parser.add_argument("--calib-count", type=int, default=32)
    parser.add_argument("--data", type=Path, default=None, help="labelled folder for mIoU")
    parser.add_argument("--ovep-python", type=Path, default=None, help="python of a venv with onnxruntime-openvino")
    parser.add_argument("--openvino-hint", default=None, help="OpenVINO inference precision: f32, bf16, f16")
    parser.add_argument("--trained", action=argparse.BooleanOptionalAction, default=True,
                        help="also report issue 6's trained U-Net with mIoU on its held-out shapes (default: on)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    models = [m for m in args.models.split(",") if m] + (["trained_unet"] if args.trained else [])
    for model in models:
        with tempfile.TemporaryDirectory(prefix=f"segedge-bench-{model}-") as workdir:
            target, weights, data, calib = model, None, args.data, args.calib
            if model == "trained_unet":
                target, weights, data = trained_unet(Path(workdir), print)
                calib = calib or data  # the dataset root: its train split, never the images mIoU is measured on
            request = ReportRequest(
                target=target, output=Path(workdir), precisions=tuple(args.precisions.split(",")),
                runtimes=tuple(args.runtimes.split(",")),
                input_size=None if model == "trained_unet" else input_size(model, args.size),
                spec=RuntimeSpec(threads=args.threads, hint=args.openvino_hint), warmup=args.warmup, runs=args.runs,
                calib=calib, weights=weights, calib_count=args.calib_count, data=data,
            )
            report = run_report(request, progress=lambda message, model=model: print(f"[{model}] {message}", flush=True))
            folder = args.out / f"report_{model}"
            folder.mkdir(parents=True, exist_ok=True)
            write_report(report, folder)
            extra = ovep_rows(args.ovep_python, report, args) if args.ovep_python else []
            if extra:
                data = json.loads((folder / "report.json").read_text())
                data["ovep_rows"] = extra
                write_text_atomic(folder / "report.json", json.dumps(data, indent=2))
        write_text_atomic(folder / SUMMARY, "\n".join(_summary(model, report, extra)))
    summary = combined_summary(args.out, models)
    write_text_atomic(args.out / "report.md", summary)
    print(summary)


SUMMARY = "summary.md"
ORDER = ["deeplabv3plus", "unet", "trained_unet"]


def combined_summary(out: Path, models: list[str]) -> str:
    """The summaries of this run's models, then those of earlier runs still in `out` (e.g. after
    rerunning one model with --models)."""
    earlier = sorted(p.parent.name.removeprefix("report_") for p in out.glob(f"report_*/{SUMMARY}"))
    lines = ["# segedge report: DeepLab v3+ and U-Net on this CPU", "",
             "DeepLab v3+ and U-Net have random weights (segedge downloads none): their agreement column says "
             "how far a precision moves the label map, not what it costs in accuracy; the trained U-Net's mIoU does.", ""]
    for model in sorted(dict.fromkeys(models + earlier), key=lambda m: (m not in ORDER, ORDER.index(m) if m in ORDER else 0, m)):
        lines.append((out / f"report_{model}" / SUMMARY).read_text())
    return "\n".join(lines)


def trained_unet(workdir: Path, progress) -> tuple[str, Path, Path]:
    """issue 6's small U-Net trained on the shapes dataset (cached), exported at its training size."""
    from segedge.export.run import ExportRequest, run_export
    from segedge.train.recipe import trained_model

    trained = trained_model(progress=progress)
    size = trained.config.data.size
    result = run_export(ExportRequest(source=trained.config.model, output=workdir / "trained_unet_fp32.onnx",
                                      weights=trained.checkpoint, build_options=trained.build_options, input_size=size))
    return str(result.path), trained.checkpoint, trained.data


def input_size(model: str, side: int | None) -> tuple[int, int] | None:
    """`side` x `side`, or the nearest larger size the model accepts (valid-mode U-Net: 188 + 16k)."""
    if side is None:
        return None
    card = build(model).card
    return model_side(side, card, 0), model_side(side, card, 1)


def ovep_rows(python: Path, report, args) -> list[dict]:
    """`segedge bench FILE --provider openvino` in the onnxruntime-openvino venv, one file per precision."""
    rows = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for precision, file in report.files.items():
        command = [str(python), "-m", "segedge", "bench", file, "--provider", "openvino", "--compare", "ort-cpu",
                   "--no-torch", "--json",
                   "--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(report.threads),
                   "--input-size", f"{report.input_size[0]}x{report.input_size[1]}"]
        command += ["--openvino-hint", args.openvino_hint] if args.openvino_hint else []
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
        if done.returncode != 0:
            rows.append({"precision": precision, "status": "failed", "reason": done.stderr.strip().splitlines()[-1:]})
            continue
        bench = json.loads(done.stdout)
        row, cpu = bench["rows"][0], bench["rows"][1]
        rows.append({"precision": precision, "status": "ok", "p50_ms": row["p50_ms"], "p90_ms": row["p90_ms"],
                     "throughput": row["throughput"], "setup_s": row["setup_s"], "first_run_ms": row["first_run_ms"],
                     "ort_cpu_p50_ms": cpu.get("p50_ms"), "placement": bench["placement"],
                     "versions": bench["machine"]["versions"]})
    return rows


def _summary(model: str, report, extra: list[dict]) -> list[str]:
    lines = [f"## {model} — {report.input_size[0]}x{report.input_size[1]}, {report.threads} threads", "",
             f"Best: **{report.best or 'none'}** ({report.best_reason}).", ""]
    ok = sorted((r for r in report.rows if r.status == "ok"), key=lambda r: r.p50_ms)
    eager = next((r for r in ok if r.runtime == "torch"), None)
    with_miou = any(r.miou is not None for r in ok)
    lines += ["| row | p50 ms | vs PyTorch eager | agreement |" + (" mIoU |" if with_miou else ""),
              "|---|---:|---:|---:|" + ("---:|" if with_miou else "")]
    for r in ok:
        speedup = f"{eager.p50_ms / r.p50_ms:.2f}x" if eager else ""
        agreement = "" if r.agreement is None else f"{r.agreement:.2%}"
        miou = (f" {r.miou:.4f} |" if r.miou is not None else " |") if with_miou else ""
        lines.append(f"| {r.label} | {r.p50_ms:.1f} | {speedup} | {agreement} |{miou}")
    for r in report.rows:
        if r.status != "ok":
            lines.append(f"| {r.label} | failed: {r.reason} | | |")
    for row in extra:
        if row["status"] != "ok":
            lines.append(f"| {row['precision']} / openvino EP | failed: {row['reason']} | | |")
            continue
        gain = f"{row['ort_cpu_p50_ms'] / row['p50_ms']:.2f}x ORT CPU" if row.get("ort_cpu_p50_ms") else ""
        lines.append(f"| {row['precision']} / openvino EP / onnxruntime-openvino (separate process; {gain} "
                     f"in that run) | {row['p50_ms']:.1f} | | |")
    lines += ["", f"Details: [report_{model}/report.md](report_{model}/report.md)", ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
