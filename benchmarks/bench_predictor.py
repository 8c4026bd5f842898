"""Predictor benchmark: pre/post-processing overhead, tiled throughput, peak memory of a huge image.

    python benchmarks/bench_predictor.py MODEL.onnx [MODEL.onnx ...] [--provider cpu] [--threads N]

For each model:
1. overhead at 512 x 512: pre-processing (`load_image` + `to_model_input`), the model run alone,
   and post-processing (crop + label map; and softmax for `predict_proba`), timed in interleaved
   rounds; overhead = (pre + post) / model, from each step's minimum (and from the medians).
2. tiled throughput: `predict` on a 4096 x 4096 image in tiles (default 512, overlap 64), in
   megapixels per second.
3. peak memory: `predict` on an 8000 x 8000 image in tiles, the process's peak resident memory
   above what it held once the session was open and warm (Linux: VmHWM, reset before the run).
   The 192 MB input image (made before the run) and the 64 MB label map are counted in.
Results go to benchmarks/results/predictor.json and .md (or --out). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtimes import Predictor, load_image  # noqa: E402
from runtimes.measure.machine import cpu_info, usable_cpus  # noqa: E402
from runtimes.imaging.postprocess import labels, probabilities  # noqa: E402
from runtimes.imaging.preprocess import from_model_output, to_model_input  # noqa: E402


def synthetic_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients with blocks of colour: what a photo costs to process, without a file."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / max(width, 1), y / max(height, 1), (x + y) / max(height + width, 1)], axis=-1) * 255
    for _ in range(20):
        top, left = rng.integers(0, height), rng.integers(0, width)
        image[top : top + height // 8, left : left + width // 8] = rng.integers(0, 256, 3)
    return image.astype(np.uint8)


def overhead(predictor: Predictor, size: int, runs: int) -> dict:
    image = synthetic_image(size, size)
    card, kind = predictor.card, predictor.card.output_kind
    steps = {"pre_ms": [], "model_ms": [], "post_labels_ms": [], "post_proba_ms": [], "predict_ms": []}
    for round_ in range(runs + 2):  # two warm-up rounds
        t0 = time.perf_counter()
        x, placement = to_model_input(load_image(image), card)
        t1 = time.perf_counter()
        output = predictor.session.run(x[None])[0]
        t2 = time.perf_counter()
        labels(from_model_output(output, placement), kind, predictor.threshold)
        t3 = time.perf_counter()
        probabilities(from_model_output(output, placement), kind)
        t4 = time.perf_counter()
        predictor.predict(image)
        t5 = time.perf_counter()
        if round_ >= 2:
            for key, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                steps[key].append(seconds * 1000)
    # On a shared machine the minimum is the step's own cost; the median adds other processes'.
    best = {key: float(np.min(values)) for key, values in steps.items()}
    median = {key: float(np.median(values)) for key, values in steps.items()}
    return {
        "size": size,
        "runs": runs,
        "min": best,
        "median": median,
        "overhead_pct": 100 * (best["pre_ms"] + best["post_labels_ms"]) / best["model_ms"],
        "overhead_proba_pct": 100 * (best["pre_ms"] + best["post_proba_ms"]) / best["model_ms"],
        "overhead_median_pct": 100 * (median["pre_ms"] + median["post_labels_ms"]) / median["model_ms"],
        "predict_over_model_median_pct": 100 * (median["predict_ms"] / median["model_ms"] - 1),
    }


def tiled_throughput(predictor: Predictor, size: int) -> dict:
    image = synthetic_image(size, size, seed=1)
    predictor.predict(image[: predictor.card.tile_size * 2, : predictor.card.tile_size * 2])  # warm the tile shape
    start = time.perf_counter()
    label_map = predictor.predict(image)
    seconds = time.perf_counter() - start
    assert label_map.shape == (size, size)
    return {"size": size, "seconds": seconds, "megapixels_per_s": size * size / 1e6 / seconds}


def peak_memory(predictor: Predictor, size: int) -> dict:
    tile = predictor.card.tile_size
    predictor.predict(synthetic_image(tile * 2, size, seed=2))  # a full-width band: warm arenas at this width
    session_rss = _vm("VmRSS")
    image = synthetic_image(size, size, seed=3)  # made first: making it takes more than it keeps
    before = _vm("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    label_map = predictor.predict(image)
    seconds = time.perf_counter() - start
    peak = _vm("VmHWM")
    assert label_map.shape == (size, size)
    return {"size": size, "seconds": seconds, "session_rss_mb": session_rss / 1024, "rss_with_image_mb": before / 1024,
            "peak_mb": peak / 1024, "peak_above_session_mb": (peak - session_rss) / 1024,
            "peak_above_session_and_image_mb": (peak - before) / 1024, "input_image_mb": image.nbytes / 2**20}


def _vm(key: str) -> int:
    """A /proc/self/status entry in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--provider", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tiled-size", type=int, default=4096)
    parser.add_argument("--big-size", type=int, default=8000)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--skip", nargs="*", default=[], choices=["overhead", "tiled", "memory"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "predictor")
    parser.add_argument("--append", action="store_true", help="Keep the other models already in --out's JSON.")
    parser.add_argument("--note", action="append", default=[], help="A line for the report (repeatable).")
    args = parser.parse_args()
    results = {"machine": cpu_info(), "usable_cpus": usable_cpus(), "provider": args.provider, "models": [], "notes": []}
    if args.append and args.out.with_suffix(".json").exists():
        earlier = json.loads(args.out.with_suffix(".json").read_text())
        results["models"], results["notes"] = earlier["models"], earlier.get("notes", [])
    results["notes"] += args.note
    for path in args.models:
        predictor = Predictor(path, args.provider, args.threads, tile_size=args.tile, tile_overlap=args.overlap)
        entry = {"model": path.name, "classes": predictor.card.num_classes, "providers": list(predictor.providers),
                 "threads": predictor.session.threads, "tile": args.tile, "overlap": args.overlap}
        print(f"{path.name}: {entry}", file=sys.stderr, flush=True)
        if "overhead" not in args.skip:
            entry["overhead"] = overhead(Predictor(path, args.provider, args.threads), args.size, args.runs)
            print(f"  overhead {entry['overhead']}", file=sys.stderr, flush=True)
        if "tiled" not in args.skip:
            entry["tiled"] = tiled_throughput(predictor, args.tiled_size)
            print(f"  tiled {entry['tiled']}", file=sys.stderr, flush=True)
        if "memory" not in args.skip:
            entry["memory"] = peak_memory(predictor, args.big_size)
            print(f"  memory {entry['memory']}", file=sys.stderr, flush=True)
        earlier = [m for m in results["models"] if m["model"] == entry["model"]]
        entry = {**(earlier[0] if earlier else {}), **entry}  # steps skipped now keep their earlier results
        results["models"] = [m for m in results["models"] if m["model"] != entry["model"]] + [entry]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    cpu = results["machine"]
    lines = [
        "# Predictor benchmark",
        "",
        f"Machine: {cpu['model']}, {results['usable_cpus']} usable CPUs ({', '.join(cpu['flags'])}); provider {results['provider']}.",
        "Produced by `python benchmarks/bench_predictor.py`.",
        "",
        "Overhead at 512 x 512 = (pre + post) / model, from each step's minimum over the rounds (the",
        "machine is shared; the minimum is the step's own cost); medians in brackets.",
        "",
        "| model | classes | pre ms | model ms | post ms, labels | post ms, proba | overhead, predict | overhead, predict_proba | predict ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in results["models"]:
        o = m.get("overhead")
        if o:
            lo, med = o["min"], o["median"]
            cells = [f"{lo[k]:.1f} ({med[k]:.1f})" for k in ("pre_ms", "model_ms", "post_labels_ms", "post_proba_ms")]
            lines.append(f"| {m['model']} | {m['classes']} | {' | '.join(cells)} | {o['overhead_pct']:.2f}% "
                         f"({o['overhead_median_pct']:.2f}%) | {o['overhead_proba_pct']:.2f}% | "
                         f"{lo['predict_ms']:.1f} ({med['predict_ms']:.1f}) |")
    lines += ["", "| model | tiles | tiled image | seconds | MP/s | huge image | seconds | peak above session |", "|---|---|---|---|---|---|---|---|"]
    for m in results["models"]:
        t, mem = m.get("tiled"), m.get("memory")
        tiled = f"{t['size']}x{t['size']} | {t['seconds']:.1f} | {t['megapixels_per_s']:.3f}" if t else "- | - | -"
        big = f"{mem['size']}x{mem['size']} | {mem['seconds']:.1f} | {mem['peak_above_session_mb']:.0f} MB" if mem else "- | - | -"
        lines.append(f"| {m['model']} | {m['tile']} px, overlap {m['overlap']} | {tiled} | {big} |")
    lines += ["", "Peak above session: the process's peak resident memory during `predict` minus what it held with",
              "the session open and warm; the input image and the label map are counted in."]
    lines += [""] + [f"- {note}" for note in results.get("notes", [])] if results.get("notes") else []
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
