"""Issue 27's benchmark: LiteRT and ExecuTorch beside ONNX Runtime and PyTorch, on demo-trained weights.

Per model (its demo weights, trained now if not cached: `segedge.train.demo.demo_model(name)`; or, for
one model, `--trained FOLDER`, a segedge.train cache folder), at --size S and at the data's own size:

1. the artefacts, each made by its runtime's own tools through `segedge export` (library calls):
   ONNX fp32 (dynamic), LiteRT fp32 and int8 (litert-torch, PT2E), ExecuTorch fp32 and int8 (static
   programs at S: XNNPACK takes the resize a dynamic program leaves out; PT2E + XNNPACKQuantizer),
   int8 calibrated on 32 train-split images through the Predictor's preprocessing;
2. parity of each artefact at S and at the data's size (a second static conversion for LiteRT and
   ExecuTorch): fp32 against PyTorch eager (fp32 preset), int8 against fp32 on the same runtime;
3. mIoU on the held-out split through each Predictor (the files at the data's size; eager: the same
   preprocessing in PyTorch);
4. one interleaved timing run per thread count (1 and 2), each in its own process (ExecuTorch's
   thread pool is one per process, sized before its first program loads): p50 of a 1 x 3 x S x S
   input, x eager, x ONNX Runtime fp32.

Writes benchmarks/results/edge_runtimes.md and .json (with the CPU's `lscpu` flags and the load).

    python benchmarks/bench_edge_runtimes.py --models unet,lraspp_mobilenet_v3_large
    python benchmarks/bench_edge_runtimes.py --models unet --trained ~/.cache/segedge/trained/unet-ad67f828598b
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
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtimes import Predictor  # noqa: E402
from runtimes.guards.fileio import write_text_atomic  # noqa: E402
from runtimes.measure.machine import cpu_info  # noqa: E402
from runtimes.measure.parity import PRESETS, check_sizes, sample_input  # noqa: E402
from runtimes.model.precision import Precision  # noqa: E402

RESULTS = Path(__file__).parent / "results"
ROWS = ("pytorch fp32", "onnxruntime fp32", "litert fp32", "litert int8", "executorch fp32", "executorch int8")
FILES = {"onnxruntime fp32": "fp32.onnx", "litert fp32": "fp32.tflite", "litert int8": "int8.tflite",
         "executorch fp32": "fp32.pte", "executorch int8": "int8.pte"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="deeplabv3plus_mobilenetv2,lraspp_mobilenet_v3_large,segformer_b0,unet")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--trained", type=Path, help="a segedge.train cache folder (weights.pt, metrics.json) to use "
                                                     "instead of the demo weights (one model)")
    parser.add_argument("--time-only", nargs=2, metavar=("FOLDER", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_only:
        folder, threads = args.time_only
        print(json.dumps(_timing(Path(folder), int(threads), args.models, args.trained, args.size, args.runs,
                                 args.warmup)))
        return
    load = os.getloadavg()
    # Each run replaces its models' sections and keeps the others' (a model per run fits a busy machine).
    kept = args.out / "edge_runtimes.json"
    earlier = json.loads(kept.read_text())["models"] if kept.is_file() else {}
    results = {"cpu": cpu_info(), "load_before": load, "size": args.size, "runs": args.runs, "models": earlier}
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as work:
        for model in [m for m in args.models.split(",") if m]:
            print(f"== {model}", file=sys.stderr, flush=True)
            folder = Path(work) / model
            folder.mkdir()
            before = os.getloadavg()
            entry = _artefacts(model, args.trained, folder, args.size)
            entry["weights"] = (f"{args.trained} (segedge.train cache folder)" if args.trained
                                else "demo weights (segedge.train.demo)")
            entry["timing"] = {str(t): _timing_process(folder, t, model, args) for t in (1, 2)}
            entry.update(cpu=results["cpu"], load_before=before, load_after=os.getloadavg(), size=args.size,
                         runs=args.runs, measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
            results["models"][model] = entry
    results["load_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "edge_runtimes.json", json.dumps(results, indent=1, default=str))
    write_text_atomic(args.out / "edge_runtimes.md", _markdown(results))
    print(_markdown(results))


def _source(model: str, trained: Path | None) -> tuple[dict, Path]:
    """ExportRequest keywords for `model`'s trained weights, and its labelled data: the demo weights (trained
    now if absent), or `trained`, a segedge.train cache folder (weights.pt + metrics.json)."""
    if trained is None:
        from segedge.train.demo import demo_model

        return {"source": model, "weights": Path("demo")}, demo_model(model).data
    from segedge.data.demo import dataset_folder
    from segedge.data.shapes import ShapesConfig

    record = json.loads((trained / "metrics.json").read_text())
    config = record["config"]
    data = dataset_folder(ShapesConfig(**{**config["data"], "size": tuple(config["data"]["size"])}))
    classes = tuple(record["per_class_iou"])
    return {"source": config["model"], "weights": trained / "weights.pt", "num_classes": len(classes),
            "build_options": config["build_kwargs"], "card_fields": {"classes": classes}}, data


def _artefacts(model: str, trained: Path | None, folder: Path, size: int) -> dict:
    """Every row's files at the timing size and at the data's size (mIoU; fp32's second parity size)."""
    from exporters.targets.from_torch import TorchTargetRequest, build_from_torch
    from segedge.data.labelled import labelled_pairs
    from segedge.evaluate.scoring import evaluate, torch_labeller
    from segedge.export.run import ExportRequest, prepared_model, run_export
    from segedge.parity.reference import torch_runner

    keywords, data = _source(model, trained)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    _, net, card, _ = prepared_model(ExportRequest(**keywords, input_size=(size, size)), say)
    pairs = labelled_pairs(data)
    with Image.open(pairs[0][0]) as image:
        own = (image.height, image.width)
    entry: dict = {"card": {"name": card.name, "classes": card.num_classes}, "data": str(data), "data_size": list(own),
                   "held_out_images": len(pairs), "rows": {}, "export_s": {}}
    t0 = time.perf_counter()
    run_export(ExportRequest(**keywords, input_size=(size, size), output=folder / "fp32.onnx"), say)
    entry["export_s"]["onnxruntime fp32"] = time.perf_counter() - t0
    for target, suffix in (("litert", ".tflite"), ("executorch", ".pte")):
        for precision in ("fp32", "int8"):
            name = f"{target} {precision}"
            entry["rows"][name] = {}
            for at, tag in (((size, size), ""), (own, "_own")):
                say(f"{name} at {at[0]}x{at[1]}")
                t0 = time.perf_counter()
                result = build_from_torch(net, card, TorchTargetRequest(
                    target=target, output=folder / f"{precision}{tag}{suffix}", input_size=at, precision=precision,
                    static=True, calib=data if precision == "int8" else None, calib_count=32), torch_runner(net))
                assert result.verification is not None
                entry["rows"][name]["x".join(map(str, at))] = {"verification": result.verification.to_dict(),
                                                               "checks": [c.to_dict() for c in result.checks],
                                                               "seconds": time.perf_counter() - t0}
    onnx = Predictor(folder / "fp32.onnx")
    parity = check_sizes(torch_runner(net), onnx.session.run, card, [(size, size), own], PRESETS[Precision.fp32])
    entry["rows"]["onnxruntime fp32"] = {"parity": [p.to_dict() for p in parity]}
    entry["miou"] = {"pytorch fp32": evaluate("pytorch", torch_labeller(net, card), pairs, card.num_classes).miou}
    for name, file in FILES.items():
        mine = file if name.startswith("onnxruntime") else file.replace(".", "_own.")
        entry["miou"][name] = evaluate(name, Predictor(folder / mine).predict, pairs, card.num_classes).miou
        say(f"{name}: mIoU {entry['miou'][name]:.4f}")
    return entry


def _timing_process(folder: Path, threads: int, model: str, args: argparse.Namespace) -> dict:
    trained = ["--trained", str(args.trained)] if args.trained else []
    run = subprocess.run([sys.executable, __file__, "--time-only", str(folder), str(threads), "--models", model,
                          *trained, "--size", str(args.size), "--runs", str(args.runs), "--warmup", str(args.warmup)],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def _timing(folder: Path, threads: int, model: str, trained: Path | None, size: int, runs: int, warmup: int) -> dict:
    """One interleaved run of every row at `threads` threads, in this (fresh) process."""
    import torch

    from runtimes.backends import backend_for_path
    from runtimes.measure.timing import Runner, time_runners
    from segedge.export.run import ExportRequest, prepared_model

    torch.set_num_threads(threads)
    keywords, _ = _source(model, trained)
    _, net, card, _ = prepared_model(ExportRequest(**keywords, input_size=(size, size)), lambda m: None)
    runners = []

    def eager(x: np.ndarray) -> object:
        with torch.no_grad():
            return net(torch.from_numpy(x))

    runners.append(Runner(name="pytorch fp32", runtime="pytorch", provider="cpu", run=eager))
    for name, file in FILES.items():
        predictor = Predictor(folder / file, threads=threads)
        backend = backend_for_path(folder / file)
        runners.append(backend.timing_runner(predictor.session, 0.0, name=name))
    x = sample_input(card, 1, (size, size), seed=0)
    rows = time_runners(runners, lambda r: x, batch=1, warmup=warmup, runs=runs)
    return {row.name: getattr(row, "p50_ms", None) for row in rows}  # None: a row that failed


def _markdown(results: dict) -> str:
    cpu = results["cpu"]
    lines = [
        "# LiteRT and ExecuTorch beside ONNX Runtime and PyTorch (issue 27)",
        "",
        f"CPU: {cpu.get('model')} ({cpu.get('usable_cpus', '?')} usable CPUs), flags: {', '.join(cpu.get('flags', []))}. "
        "Each model's section says when it was measured and the load average around it (a machine shared by "
        "other engineers: ratios come from one interleaved run per model and thread count, absolute times less so).",
        f"Input 1 x 3 x {results['size']} x {results['size']}, {results['runs']} interleaved rounds; LiteRT and "
        "ExecuTorch files static at that size; int8 made by each runtime's own quantizer (ExecuTorch: PT2E with "
        "XNNPACKQuantizer; LiteRT: ai-edge-quantizer's static_wi8_ai8), calibrated on 32 "
        "train-split images; mIoU on the held-out split through each Predictor (LiteRT and ExecuTorch: files converted "
        "at the images' own size, as an app would ship them for that camera size; ONNX: the dynamic file).",
        "",
    ]
    for model, entry in results["models"].items():
        eager_miou = entry["miou"]["pytorch fp32"]
        weights = entry.get("weights", "demo weights")
        load = entry.get("load_before", results.get("load_before")), entry.get("load_after", results.get("load_after"))
        when = f"Measured {entry['measured']}; " if "measured" in entry else ""
        lines += [f"## {model}", "", f"Weights: {weights}; held-out images: {entry['held_out_images']} of "
                  f"{'x'.join(map(str, entry['data_size']))}.", "",
                  f"{when}load average before {load[0][0]:.1f}, after {load[1][0]:.1f}." if all(load) else "", "",
                  "| row | p50 ms 1 thr | x eager | x ORT fp32 | p50 ms 2 thr | x eager | x ORT fp32 | mIoU | "
                  "points lost vs eager | parity / agreement |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        t1, t2 = entry["timing"]["1"], entry["timing"]["2"]
        for row in ROWS:
            cells = []
            for t in (t1, t2):
                p = t.get(row)
                cells += [_ms(p), _ratio(t["pytorch fp32"], p), _ratio(t["onnxruntime fp32"], p)]
            miou = entry["miou"].get(row, float("nan"))
            lines.append(f"| {row} | {' | '.join(cells)} | {miou:.4f} | "
                         f"{100 * (eager_miou - miou):+.2f} | {_parity(entry['rows'].get(row))} |")
        lines.append("")
        lines.append("Parity: fp32 rows against PyTorch eager (fp32 preset), int8 rows against the fp32 file on the "
                     "same runtime (int8 preset), generated or calibration-folder images at each size. Delegate checks "
                     "at the timed size:")
        lines.append("")
        for row in ("litert fp32", "litert int8", "executorch fp32", "executorch int8"):
            size = entry.get("size", results["size"])
            timed = entry["rows"][row][f"{size}x{size}"]
            for check in timed["checks"]:
                outside = ", ".join(sorted({u["op_type"] for u in check["unsupported"]})) or "none"
                lines.append(f"- {row}: {check['supported']} of {check['nodes']} nodes in XNNPACK, "
                             f"{check['partitions']} partition(s); outside: {outside}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _ratio(reference: float | None, value: float | None) -> str:
    return f"{reference / value:.2f}" if reference and value else "-"


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value else "-"


def _parity(row: dict | None) -> str:
    if not row:
        return "(reference)"
    if "parity" in row:
        return "; ".join(f"{'x'.join(map(str, p['size']))}: {p['argmax_agreement']:.4%}"
                         f"{'' if not p['failures'] else ' FAILED'}" for p in row["parity"])
    return "; ".join(f"{at}: {v['verification']['preset']} {'ok' if v['verification']['passed'] else 'FAILED'} "
                     f"{v['verification']['argmax_agreement']:.4%}" for at, v in row.items())


def rerender(path: Path = RESULTS / "edge_runtimes.json") -> str:
    """The markdown again from a run's JSON (after a change to the table's layout)."""
    return _markdown(json.loads(path.read_text()))



if __name__ == "__main__":
    main()

