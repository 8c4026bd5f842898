"""Summarise a `benchmarks/gpu_check.sh` run into `gpu.md` and `results.json` (issue 19).

    python benchmarks/gpu_summary.py --raw WORK/raw --md OUT/gpu.md --json OUT/results.json --mode gpu

Reads what the script left in the raw folder: every step's `NAME.status` (status, rc, seconds,
kind, reason) and `NAME.meta` (what the step was), the JSON of each bench / verify / quantize /
export, the junit XML of `pytest -m cuda`, the Predictor check's JSON and `versions.json`. Writes
the report: the GPU, driver and versions first; the verdict (every required check, target 3 of
issue 19); the benchmark table (ORT p50 and its speed-up over PyTorch eager and torch.compile
timed in the same run, with the parity `verify` measured on the same provider); parity; pytest;
the Predictor; every step with its time and reason.

Exit status 0 when every required check passed (on a GPU, target 3 included), 1 otherwise.
Standard library only: it runs in whatever Python the script found.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

TARGET_SPEEDUP = 2.0
ALTERNATES = ("_profiled", "_nocompile")


@dataclass
class Step:
    name: str
    status: str  # ok, failed, timeout, skipped
    rc: str
    seconds: int
    kind: str  # req, opt, trt
    reason: str
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def read_steps(raw: Path) -> dict[str, Step]:
    """This run's steps: those in plan.txt (a step kept from an earlier run, with its result), else all."""
    plan_path = raw / "plan.txt"
    plan = set(plan_path.read_text().split()) if plan_path.exists() else None
    steps = {}
    for path in sorted(raw.glob("*.status")):
        if plan is not None and path.stem not in plan:
            continue
        parts = (path.read_text().rstrip("\n").split("\t") + [""] * 5)[:5]
        status, rc, seconds, kind, reason = parts
        meta_path = path.with_suffix(".meta")
        meta = {}
        if meta_path.exists():
            for word in meta_path.read_text().split():
                key, _, value = word.partition("=")
                meta[key] = value
        steps[path.stem] = Step(path.stem, status, rc, int(seconds or 0), kind, reason, meta)
    return steps


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- benches ------------------------------------------------------------------------------------
@dataclass
class BenchRow:
    step: str
    model: str
    precision: str
    provider: str
    batch: int
    io: bool
    strict: str  # "passed", "failed: ...", "not asked"
    size: str
    ort_p50: float | None
    eager_p50: float | None
    compile_p50: float | None
    compile_s: float | None
    first_run_ms: float | None
    setup_s: float | None
    active: str
    cpu_nodes: list[str]
    failures: list[str]

    @property
    def x_eager(self) -> float | None:
        return self.eager_p50 / self.ort_p50 if self.ort_p50 and self.eager_p50 else None

    @property
    def x_compile(self) -> float | None:
        return self.compile_p50 / self.ort_p50 if self.ort_p50 and self.compile_p50 else None


def bench_rows(steps: dict[str, Step], raw: Path) -> list[BenchRow]:
    rows = []
    for name, step in steps.items():
        if step.meta.get("kind") != "bench" or name.endswith(ALTERNATES):
            continue
        # A bench that failed --strict ran again with --profile; one whose torch.compile took the
        # whole limit, again without it: their timings stand in, the first step's failure counts.
        stand_in = [steps[name + s] for s in ALTERNATES if name + s in steps and steps[name + s].ok]
        source = step if step.ok else stand_in[0] if stand_in else step
        data = load_json(raw / f"{source.name}.json") if source.ok else None
        if step.ok:
            strict = "passed"
        elif step.status == "failed" and "--strict:" in step.reason:
            strict = "failed: " + step.reason.split("--strict:", 1)[1].strip()
        elif source is not step and source.meta.get("strict") == "1":
            strict = "passed"  # in the stand-in run (without torch.compile), with --strict
        else:
            strict = f"not judged ({step.status})"
        m = step.meta
        row = BenchRow(step=name, model=m.get("model", "?"), precision=m.get("precision", "?"),
                       provider=m.get("provider", "?"), batch=int(m.get("batch", 0)), io=m.get("io") == "1",
                       strict=strict, size="-", ort_p50=None, eager_p50=None, compile_p50=None, compile_s=None,
                       first_run_ms=None, setup_s=None, active="-", cpu_nodes=[], failures=[])
        if data is None:
            row.failures.append(f"{source.status}: {source.reason}" if source.reason else source.status)
            rows.append(row)
            continue
        if source.name.endswith("_nocompile"):
            row.failures.append(f"torch.compile row: {step.status} ({step.reason}); timed again without it")
        row.size = "x".join(str(v) for v in data.get("input_size", [])) or "-"
        row.active = ",".join(p.replace("ExecutionProvider", "") for p in data.get("active_providers", []))
        placement = data.get("placement") or {}
        row.cpu_nodes = list(placement.get("fallback_nodes") or [])
        for r in data.get("rows", []):
            runtime = (r.get("tags") or {}).get("runtime", r.get("runtime", ""))
            if r.get("status") != "ok":
                row.failures.append(f"{r.get('name')}: {r.get('reason')}")
                continue
            if runtime == "onnxruntime" and row.ort_p50 is None:
                row.ort_p50, row.first_run_ms, row.setup_s = r["p50_ms"], r.get("first_run_ms"), r.get("setup_s")
            elif runtime == "torch":
                row.eager_p50 = r["p50_ms"]
            elif runtime == "torch.compile":
                row.compile_p50, row.compile_s = r["p50_ms"], r.get("compile_s")
        rows.append(row)
    order = {"cuda": 0, "cpu": 0, "tensorrt": 1}
    rows.sort(key=lambda r: (r.model, order.get(r.provider, 2), r.precision, r.batch, r.io))
    return rows


# -- verify, quantize, pytest, predictor ----------------------------------------------------------
def verify_summary(steps: dict[str, Step], raw: Path) -> list[dict[str, Any]]:
    out = []
    for name, step in steps.items():
        if step.meta.get("kind") != "verify":
            continue
        data = load_json(raw / f"{name}.json") if (raw / f"{name}.json").exists() else None
        entry: dict[str, Any] = {"step": name, "model": step.meta.get("model"), "precision": step.meta.get("precision"),
                                 "provider": step.meta.get("provider"), "status": step.status, "reason": step.reason}
        if isinstance(data, dict):
            entry.update(passed=bool(data.get("passed")), preset=data.get("preset"), providers=data.get("providers"),
                         sizes=[{"label": r.get("label"), "passed": r.get("passed"), "argmax_agreement": r.get("argmax_agreement"),
                                 "max_abs": r.get("max_abs"), "cosine": r.get("cosine"), "failures": r.get("failures")}
                                for r in data.get("results", [])])
        else:
            entry["passed"] = False
        out.append(entry)
    return sorted(out, key=lambda e: (str(e["model"]), str(e["precision"])))


def quantize_summary(steps: dict[str, Step], raw: Path) -> list[dict[str, Any]]:
    out = []
    for name, step in steps.items():
        if step.meta.get("kind") != "quantize":
            continue
        data = load_json(raw / f"{name}.json")
        entry: dict[str, Any] = {"step": name, "model": step.meta.get("model"), "precision": step.meta.get("precision"),
                                 "status": step.status, "reason": step.reason}
        if isinstance(data, dict):
            entry["measured"] = _quantize_cost(data)
        out.append(entry)
    return sorted(out, key=lambda e: (str(e["model"]), str(e["precision"])))


def _quantize_cost(data: dict[str, Any]) -> str:
    """One phrase of what `segedge quantize --json` measured against fp32 (its shape varies by version)."""
    parts = []
    for key in ("size_bytes", "argmax_agreement", "agreement", "miou_drop_points", "passed"):
        value = _find(data, key)
        if value is not None:
            parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts) or "-"


def _find(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        if key in data and not isinstance(data[key], (dict, list)):
            return data[key]
        for value in data.values():
            found = _find(value, key)
            if found is not None:
                return found
    elif isinstance(data, list):
        for value in data:
            found = _find(value, key)
            if found is not None:
                return found
    return None


def pytest_summary(raw: Path, step: Step | None) -> dict[str, Any]:
    xml = raw / "pytest_cuda.xml"
    out: dict[str, Any] = {"status": step.status if step else "not run", "reason": step.reason if step else "",
                           "passed": [], "failed": [], "skipped": [], "collection_skipped": 0}
    if not xml.exists():
        return out
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        out["reason"] = f"junit xml unreadable: {exc}"
        return out
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}".lstrip(":")
        skipped, failure = case.find("skipped"), case.find("failure")
        if failure is None:  # (an Element without children is falsy: no `or` here)
            failure = case.find("error")
        if skipped is not None and skipped.get("message") == "collection skipped":
            out["collection_skipped"] += 1  # a module skipped at import (e.g. no torchvision): no cuda test in it ran
        elif skipped is not None:
            out["skipped"].append(f"{name}: {skipped.get('message', '')}"[:300])
        elif failure is not None:
            out["failed"].append(f"{name}: {failure.get('message', '')}"[:300])
        else:
            out["passed"].append(name)
    return out


# -- the verdict -----------------------------------------------------------------------------------
@dataclass
class Check:
    what: str
    passed: bool
    detail: str
    required: bool


def checks_for(mode: str, steps: dict[str, Step], rows: list[BenchRow], verify: list[dict[str, Any]],
               pytest: dict[str, Any], big: str, size: int) -> tuple[list[Check], list[Check]]:
    gpu = mode == "gpu"
    trt_installed = steps.get("install_tensorrt") is not None and steps["install_tensorrt"].ok and gpu
    checks = []
    for step in steps.values():
        if step.name.endswith(ALTERNATES) or step.meta.get("kind") in ("verify", "pytest"):
            continue  # judged below, from their results
        required = step.kind == "req" or (step.kind == "trt" and trt_installed)
        if not gpu and step.meta.get("kind") in ("gpu", "install"):
            required = False
        if step.kind == "trt" and not trt_installed:
            why = "TensorRT is not installed" if gpu else "dry run: TensorRT is not in the CPU venv"
            detail = f"{step.status}: {step.reason}" + (f" (optional: {why})" if not step.ok else "")
        else:
            detail = step.status + (f": {step.reason}" if step.reason else "")
        checks.append(Check(step.name, step.ok, detail, required))
    for v in verify:
        worst = min((s["argmax_agreement"] for s in v.get("sizes", []) if s.get("argmax_agreement") is not None), default=None)
        detail = (f"preset {v.get('preset')}, {len(v.get('sizes', []))} sizes, min argmax agreement "
                  f"{worst:.4%}" if worst is not None else f"{v['status']}: {v['reason']}")
        # The dry run's tiny inputs on random weights say little of fp16 (argmax ties flip): fp32 only there.
        required = gpu or v.get("precision") == "fp32"
        checks.append(Check(v["step"], bool(v.get("passed")), detail + ("" if required else " (dry run: fp16 informational)"), required))
    ran = len(pytest["passed"]) + len(pytest["failed"]) + len(pytest["skipped"])
    if gpu:  # on the GPU every cuda test must run and pass; a skip there is a failure
        ok = bool(pytest["passed"]) and not pytest["failed"] and not pytest["skipped"] and pytest["status"] == "ok"
    else:  # without a GPU they skip cleanly
        ok = pytest["status"] == "ok" and not pytest["failed"]
    detail = (f"{len(pytest['passed'])} passed, {len(pytest['failed'])} failed, {len(pytest['skipped'])} skipped of {ran}"
              + (f"; {pytest['collection_skipped']} modules skipped at import" if pytest["collection_skipped"] else "")
              + (f"; {pytest['status']}: {pytest['reason']}" if pytest["status"] != "ok" else ""))
    checks.append(Check("pytest -m cuda", ok, detail, True))

    # Target 3 of issue 19.
    accelerated = ("cuda", "tensorrt") if gpu else ("cpu",)
    candidates = [r for r in rows if r.model == big and r.batch == 1 and r.size == f"{size}x{size}"
                  and r.provider in accelerated and r.x_eager is not None]
    best = max(candidates, key=lambda r: r.x_eager or 0.0, default=None)
    speed = Check(f"target 3: ORT CUDA or TensorRT >= {TARGET_SPEEDUP:g}x PyTorch eager CUDA fp32, {big} batch 1 {size}x{size}",
                  best is not None and (best.x_eager or 0) >= TARGET_SPEEDUP,
                  (f"best {best.x_eager:.2f}x: {_row_label(best)} {best.ort_p50:.2f} ms vs eager {best.eager_p50:.2f} ms; "
                   + "; ".join(f"{_row_label(r)} {r.x_eager:.2f}x" for r in candidates if r is not best))
                  if best else "no batch-1 row of it was timed", gpu)
    fp16 = [v for v in verify if v.get("precision") == "fp16"]
    parity = Check("target 3: fp16 parity within its preset on the provider",
                   bool(fp16) and all(v.get("passed") for v in fp16),
                   "; ".join(f"{v['model']} {'passed' if v.get('passed') else 'FAILED' if v['status'] in ('ok', 'failed') else v['status']}" for v in fp16) or "no fp16 verify ran", gpu)
    judged = [r for r in rows if r.provider in accelerated and (r.strict == "passed" or r.strict.startswith("failed"))]
    strict = Check("target 3: no node silently on the CPU (--strict)",
                   bool(judged) and all(r.strict == "passed" for r in judged),
                   (f"{sum(r.strict == 'passed' for r in judged)} of {len(judged)} benches passed --strict"
                    + "".join(f"; {_row_label(r)}: {r.strict}" for r in judged if r.strict != "passed"))
                   if judged else "no bench was judged", gpu)
    targets = [speed, parity, strict]
    if not gpu:
        for t in targets:
            t.detail += " (dry run on the CPU provider: plumbing only, not a target)"
    return checks, targets


def _row_label(r: BenchRow) -> str:
    provider = {"tensorrt": "TensorRT", "cuda": "ORT CUDA", "cpu": "ORT CPU"}.get(r.provider, r.provider)
    return f"{provider} {r.precision} batch {r.batch} IO binding {'on' if r.io else 'off'}"


# -- the report ------------------------------------------------------------------------------------
def fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def machine_lines(versions: dict[str, Any] | None, steps: dict[str, Step]) -> list[str]:
    if not versions:
        return ["- versions: not recorded (the `versions` step did not run)"]
    lines = []
    for gpu in versions.get("gpus") or []:
        lines.append(f"- GPU: {gpu.get('name')}, {gpu.get('memory.total')}, compute capability {gpu.get('compute_cap')}; "
                     f"driver {gpu.get('driver_version')}, CUDA {versions.get('cuda_driver_api') or '?'} (driver API)")
    if not versions.get("gpus"):
        lines.append(f"- GPU: none seen ({versions.get('nvidia_smi_error', 'nvidia-smi gave nothing')})")
    lines.append(f"- torch {versions.get('torch', '-')} (CUDA {versions.get('torch_cuda')}, cuDNN {versions.get('torch_cudnn')}"
                 f"{', ' + versions['torch_gpu'] if versions.get('torch_gpu') else ''})")
    ort = versions.get("onnxruntime-gpu") or versions.get("onnxruntime")
    dist = "onnxruntime-gpu" if versions.get("onnxruntime-gpu") else "onnxruntime"
    lines.append(f"- {dist} {ort} (imported {versions.get('onnxruntime_imported')}, built for CUDA "
                 f"{versions.get('onnxruntime_cuda') or '-'}); providers: {', '.join(versions.get('onnxruntime_providers') or [])}")
    if versions.get("onnxruntime") and versions.get("onnxruntime-gpu"):
        lines.append(f"  (a CPU onnxruntime {versions['onnxruntime']} is installed too, behind it on the path)")
    trt = versions.get("tensorrt") or versions.get("tensorrt-cu13") or versions.get("tensorrt-cu12")
    install = steps.get("install_tensorrt")
    lines.append(f"- TensorRT {trt}" if trt else
                 f"- TensorRT: not installed ({install.status + ': ' + install.reason if install else 'not tried'})")
    lines.append(f"- onnx {versions.get('onnx', '-')}, onnxscript {versions.get('onnxscript', '-')}, onnxsim "
                 f"{versions.get('onnxsim', 'missing (exports not simplified)')}, numpy {versions.get('numpy', '-')}, "
                 f"typer {versions.get('typer', '-')}")
    lines.append(f"- segedge {versions.get('segedge', '-')} at commit {versions.get('segedge_commit') or '?'}; "
                 f"Python {versions.get('python')} ({versions.get('executable')}); {versions.get('platform')}")
    return lines


def render(args: argparse.Namespace, steps: dict[str, Step], rows: list[BenchRow], verify: list[dict[str, Any]],
           quantize: list[dict[str, Any]], pytest: dict[str, Any], predictor: dict[str, Any] | None,
           versions: dict[str, Any] | None, checks: list[Check], targets: list[Check]) -> str:
    gpu = args.mode == "gpu"
    required = [c for c in checks + targets if c.required]
    failed = [c for c in required if not c.passed]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"# segedge on {'a GPU' if gpu else 'the CPU (dry run)'}: issue 19", "",
           f"Written by `benchmarks/gpu_check.sh` ({'GPU run' if gpu else 'dry run: --provider cpu, tiny sizes; no GPU was used'}) "
           f"on {now}: {args.elapsed} s of steps against a {args.budget} s budget.", "", "## Machine", ""]
    out += machine_lines(versions, steps)
    out += ["", "## Verdict", "",
            f"**{'Every required check passed.' if not failed else f'{len(failed)} of {len(required)} required checks did not pass.'}**", ""]
    out += ["| check | result | detail |", "|---|---|---|"]
    for c in targets + sorted(checks, key=lambda c: (c.passed or not c.required, c.passed, c.what)):
        if c.required:
            result = "pass" if c.passed else "**FAIL**"
        elif c.what.startswith("target"):
            result = "(met)" if c.passed else "(not met)"
        else:
            status = steps[c.what].status if c.what in steps else ("ok" if c.passed else "failed")
            result = f"{status} (optional)"
        out.append(f"| {_cell(c.what)} | {result} | {_cell(c.detail)} |")
    out += ["", "## Benchmark", "",
            "p50 of the ONNX Runtime row, and PyTorch eager / torch.compile (fp32, on the same device) timed in the same "
            "interleaved run; x = their p50 over ORT's. IO binding on: the input stays on the device and PyTorch's timing "
            "excludes host copies too. TensorRT fp16 is the fp32 file with --trt-fp16; int8 the QDQ file with --trt-int8, "
            "both with an engine cache (first run and setup show the engine build). Parity: `segedge verify` of that file on "
            "that provider against PyTorch (3 sizes, minimum argmax agreement).", "",
            "| model | precision | batch | provider | IO binding | size | ORT p50 ms | eager p50 ms | x eager | compile p50 ms "
            "| x compile | --strict | parity | first run ms / setup s | notes |",
            "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---|---|---|---|"]
    for r in rows:
        out.append("| " + " | ".join([
            r.model, r.precision, str(r.batch), r.provider + (f" ({r.active})" if r.active not in ("-", "") else ""),
            "on" if r.io else "off", r.size, fmt(r.ort_p50), fmt(r.eager_p50), fmt(r.x_eager, ".2f", "x"), fmt(r.compile_p50),
            fmt(r.x_compile, ".2f", "x"), _cell(r.strict if len(r.strict) < 90 else r.strict[:87] + "..."),
            _parity_cell(r, verify), f"{fmt(r.first_run_ms, '.0f')} / {fmt(r.setup_s, '.1f')}",
            _cell("; ".join(r.failures + ([f"CPU nodes: {', '.join(r.cpu_nodes[:4])}"] if r.cpu_nodes else [])
                            + ([f"compile {r.compile_s:.0f} s"] if r.compile_s else [])) or "-"),
        ]) + " |")
    if not rows:
        out.append("| (no bench ran) |" + " |" * 14)
    out += ["", "## Parity on the provider (`segedge verify`)", "",
            "| model | precision | provider | preset | result | per size: argmax agreement, max abs |", "|---|---|---|---|---|---|"]
    for v in verify:
        sizes = "; ".join(f"{s['label']}: {fmt(s['argmax_agreement'], '.4%')}, {fmt(s['max_abs'], '.2e')}"
                          + ("" if s.get("passed") else f" ({', '.join(s.get('failures') or [])})") for s in v.get("sizes", []))
        out.append(f"| {v['model']} | {v['precision']} | {v['provider']} | {v.get('preset', '-')} | "
                   f"{'pass' if v.get('passed') else 'FAIL'} | {_cell(sizes or v['status'] + ': ' + v['reason'])} |")
    out += ["", "## Conversions (`segedge quantize`, measured against fp32 on the CPU)", "",
            "| model | precision | status | measured |", "|---|---|---|---|"]
    for q in quantize:
        out.append(f"| {q['model']} | {q['precision']} | {q['status']} | {_cell(q.get('measured') or q['reason'])} |")
    out += ["", "## `pytest -m cuda`", ""]
    out += [f"- passed: {', '.join(pytest['passed']) or 'none'}"]
    out += [f"- FAILED: {_cell(f)}" for f in pytest["failed"]]
    out += [f"- skipped: {_cell(s)}" for s in pytest["skipped"]]
    if pytest["status"] != "ok":
        out.append(f"- step {pytest['status']}: {_cell(pytest['reason'])}")
    out += ["", "## Predictor on the provider, tiled, 4 threads", ""]
    if predictor:
        out.append(f"- {predictor['model']} on {', '.join(predictor['active_providers'])}: "
                   f"{predictor['image_hw'][0]}x{predictor['image_hw'][1]} images, tiles {predictor['tile_size']} "
                   f"(overlap {predictor['tile_overlap']}); {predictor['images']} images serially "
                   f"{predictor['serial_s_per_image'] * 1000:.0f} ms each, 8 from 4 threads "
                   f"{predictor['threaded_s_per_image'] * 1000:.0f} ms each; masks equal to the serial ones: "
                   f"{'yes' if predictor['equal'] else 'NO (agreement ' + format(predictor['min_agreement_with_serial'], '.6f') + ')'}")
    else:
        step = steps.get("predictor")
        out.append(f"- not measured ({step.status + ': ' + step.reason if step else 'not run'})")
    out += ["", "## Steps", "", "| step | kind | status | seconds | reason |", "|---|---|---|---:|---|"]
    for s in steps.values():
        out.append(f"| {s.name} | {s.kind} | {s.status} | {s.seconds} | {_cell(s.reason) or '-'} |")
    total = sum(s.seconds for s in steps.values())
    out += ["", f"Step seconds add up to {total} s (some ran side by side); raw logs and JSON: raw.tar.gz.", ""]
    return "\n".join(out)


def _parity_cell(r: BenchRow, verify: list[dict[str, Any]]) -> str:
    match = [v for v in verify if v["model"] == r.model and v["precision"] == r.precision and v["provider"] == r.provider]
    if not match:
        return "-"
    v = match[0]
    worst = min((s["argmax_agreement"] for s in v.get("sizes", []) if s.get("argmax_agreement") is not None), default=None)
    return f"{'pass' if v.get('passed') else 'FAIL'} {fmt(worst, '.3%')}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--md", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--mode", choices=("gpu", "dry"), default="gpu")
    parser.add_argument("--budget", type=int, default=0)
    parser.add_argument("--elapsed", type=int, default=0)
    parser.add_argument("--big", default="deeplabv3plus")
    parser.add_argument("--small", default="lraspp_mobilenet_v3_large")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args(argv)
    steps = read_steps(args.raw)
    rows = bench_rows(steps, args.raw)
    verify = verify_summary(steps, args.raw)
    quantize = quantize_summary(steps, args.raw)
    pytest = pytest_summary(args.raw, steps.get("pytest_cuda"))
    predictor = load_json(args.raw / "predictor.out") if (args.raw / "predictor.out").exists() else None
    versions = load_json(args.raw / "versions.json")
    checks, targets = checks_for(args.mode, steps, rows, verify, pytest, args.big, args.size)
    args.md.write_text(render(args, steps, rows, verify, quantize, pytest, predictor, versions, checks, targets))
    passed = all(c.passed for c in checks + targets if c.required)
    record = {
        "mode": args.mode, "passed": passed, "budget_s": args.budget, "elapsed_s": args.elapsed, "versions": versions,
        "checks": [c.__dict__ for c in checks], "targets": [t.__dict__ for t in targets],
        "bench": [dict(r.__dict__, x_eager=r.x_eager, x_compile=r.x_compile) for r in rows],
        "verify": verify, "quantize": quantize, "pytest": pytest, "predictor": predictor,
        "steps": [s.__dict__ for s in steps.values()],
    }
    args.json.write_text(json.dumps(record, indent=1))
    failed = [c.what for c in checks + targets if c.required and not c.passed]
    print(f"gpu_summary: {'every required check passed' if passed else 'not passed: ' + ', '.join(failed)}", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
