"""Issue 12's benchmark: what each precision and runtime costs and gains on demo-trained models.

DeepLab v3+ (ResNet-50), PSPNet (ResNet-50) and U-Net with `--weights demo` (segedge's recipes,
trained once and cached: `segedge.train.demo`), each in one `segedge report`: fp32 / fp16 / int8
on ONNX Runtime's CPU provider and OpenVINO's runtime, fp32 on PyTorch eager and torch.compile,
all rows of a model timed in the same interleaved rounds at 512 x 512 with 2 threads. mIoU is
measured on each model's held-out split (the images' own size), points lost against PyTorch fp32,
argmax agreement with PyTorch fp32 on those held-out images. Writes benchmarks/results/trained.md and
trained.json (with the CPU's flags) and each model's report under benchmarks/results/trained/.

The same run is issue 13's benchmark on trained weights: after each report, a second interleaved
run on NNCF's IR times the Predictor's OpenVINO adapter against hand-tuned OpenVINO and the
Predictor end to end (`bench_openvino.predictor_overhead`), and openvino.md / openvino.json are
written from these reports (`bench_openvino.write_outputs`): one set of rows, two questions.

    nice -n 10 python benchmarks/bench_trained.py                  # the full run
    python benchmarks/bench_trained.py --models unet --runs 3       # one model, a quick check
    python benchmarks/bench_trained.py --models segformer_b0,upernet_swin_t   # issue 16's transformers

The models run replace their own sections of the committed results (trained.json, openvino.json)
and keep the others', so one model can be measured again (say after its recipe changed) without
the others; each section names the weights (recipe key, held-out mIoU) it was measured on.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_openvino  # noqa: E402  (the Predictor-overhead run and openvino.md)
from runtimes.backends import RuntimeSpec
from runtimes.guards.fileio import write_text_atomic
from runtimes.measure.machine import cpu_info
from segedge.report import ReportRequest, run_report
from segedge.report.render import to_dict, write_report

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="deeplabv3plus,pspnet,unet")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-openvino-overhead", dest="overhead", action="store_false",
                        help="Skip the second run on NNCF's IR (and leave openvino.md as it is).")
    args = parser.parse_args()

    reports, openvino = _committed(args.out / "trained.json", "reports"), _committed(args.out / "openvino.json", "models")
    for model in [m for m in args.models.split(",") if m]:
        with tempfile.TemporaryDirectory(prefix=f"segedge-trained-{model}-") as workdir:
            request = ReportRequest(target=model, output=Path(workdir), weights=Path("demo"),
                                    input_size=(args.size, args.size), spec=RuntimeSpec(threads=args.threads),
                                    warmup=args.warmup, runs=args.runs)
            report = run_report(request, progress=lambda message, model=model: print(f"[{model}] {message}", flush=True))
            folder = args.out / "trained" / model
            folder.mkdir(parents=True, exist_ok=True)
            reports[model] = to_dict(report, write_report(report, folder))
            if args.overhead and "int8-nncf" in report.files:
                print(f"[{model}] the Predictor vs hand-tuned OpenVINO on NNCF's IR", flush=True)
                overhead = bench_openvino.predictor_overhead(Path(report.files["int8-nncf"]), args.size, args)
                openvino[model] = {"weights": "demo", "report": reports[model], "predictor": overhead}
                bench_openvino.write_outputs(openvino, args.out, source="bench_trained.py")
    latest = [m for m in args.models.split(",") if m in reports]
    machine = reports[latest[-1]]["machine"] if latest else {}
    all_flags = _all_flags()
    write_text_atomic(args.out / "trained.json", json.dumps({"reports": reports, "cpu_flags": all_flags}, indent=2))
    summary = summarize(reports, machine, all_flags)
    write_text_atomic(args.out / "trained.md", summary)
    print(summary)


def _committed(path: Path, key: str) -> dict[str, dict]:
    """The per-model sections already written at `path` (none when it is missing)."""
    return dict(json.loads(path.read_text())[key]) if path.is_file() else {}


def summarize(reports: dict[str, dict], machine: dict, all_flags: list[str]) -> str:
    cpu = machine.get("cpu", {})
    lines = [
        "# Demo-trained models: precision x runtime on this CPU",
        "",
        (f"`python benchmarks/bench_trained.py`: `segedge report MODEL --weights demo`, 512x512, "
        f"{next(iter(reports.values()))['threads'] if reports else '?'} threads, one interleaved run per model "
        f"(all rows of a model in the same rounds). mIoU on the model's held-out split at the images' own size; "
        f"points lost against PyTorch fp32; agreement: argmax agreement with PyTorch fp32 on "
        f"{next(iter(reports.values())).get('agreement_on', 'the timed input') if reports else '?'}."),
        "",
        ("Each model's section names the CPU it was measured on: a model measured again later (its recipe "
         "changed) may have run on another machine of this kind, so compare ratios within a section, not "
         "milliseconds across sections."),
        "",
        (f"- CPU of the latest run: {cpu.get('model', platform.processor())}, {cpu.get('usable_cpus', '?')} usable CPUs; "
        f"flags that decide the kernels: {' '.join(cpu.get('flags', [])) or 'none'}"),
        f"- all CPU flags of the latest run (`/proc/cpuinfo`): {' '.join(all_flags)}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in machine.get('versions', {}).items())}",
        "",
    ]
    for model, report in reports.items():
        rows = [r for r in report["rows"] if r["status"] == "ok"]
        eager = next((r for r in rows if r["runtime"] == "torch"), None)
        here = report.get("machine", {}).get("cpu", {})
        lines += [f"## {model} ({report['weights']})", "",
                  f"Measured on: {here.get('model', '?')}, {here.get('usable_cpus', '?')} usable CPUs, "
                  f"{' '.join(here.get('flags', [])) or 'no flags recorded'}.", "",
                  f"Verdict: **{report['best']['row'] or 'none'}** — {report['best']['rule']}.", "",
                  "| precision | provider | runtime | mIoU | points lost | agreement | p50 ms | x eager |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in sorted(rows, key=lambda r: r["p50_ms"]):
            speedup = f"{eager['p50_ms'] / r['p50_ms']:.2f}x" if eager else ""
            lines.append(f"| {r['precision']} | {r['provider']} | {r['runtime']} | {_f(r['miou'], 4)} | {_f(r['miou_lost'], 2)} | "
                         f"{_pct(r['agreement'])} | {r['p50_ms']:.1f} | {speedup} |")
        for r in report["rows"]:
            if r["status"] != "ok":
                lines.append(f"| {r['precision']} | {r['provider']} | {r['runtime']} | failed: {r['reason']} | | | | |")
        lines += ["", f"Details: [trained/{model}/report.md](trained/{model}/report.md)", ""]
    return "\n".join(lines)


def _all_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line.partition(":")[2].split()
    except OSError:
        pass
    flags = cpu_info()["flags"]
    return list(flags) if isinstance(flags, list) else []


def _f(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


if __name__ == "__main__":
    sys.exit(main())
