"""Soak: one Predictor, many predictions at mixed sizes from several threads.

Shows that resident memory stays flat once warm (the slope of RSS against calls completed,
least-squares after warm-up, in MB per 1,000 calls) and that every threaded result is
bit-identical to a serial run of the same image (SHA-256 of each label map). Writes
benchmarks/results/soak.{md,json}.

    python benchmarks/bench_soak.py [--model lraspp_mobilenet_v3_large] [--calls 2000] [--threads 8]
                                    [--runtime onnxruntime|openvino] [--name soak]

`--model` is a zoo name or user model (exported once into a cache folder) or an .onnx file.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from runtimes.guards.fileio import write_text_atomic
from runtimes.measure.machine import machine_record
from runtimes.predictor import Predictor

RESULTS = Path(__file__).parent / "results"
# Sizes an app sees: odd, non-square, tiny and (past the 256 tile) tiled.
SIZES = ((64, 64), (97, 131), (128, 96), (33, 47), (200, 200), (160, 240), (256, 192), (300, 180), (384, 512), (17, 301))
TILE_SIZE = 256


@dataclass(frozen=True)
class Sample:
    seconds: float
    calls: int
    rss_mb: float


def model_path(model: str, size: tuple[int, int]) -> Path:
    if model.endswith(".onnx"):
        return Path(model)
    cache = Path(tempfile.gettempdir()) / "segedge-soak"
    path = cache / f"{model.replace('/', '_').replace(':', '_')}_{size[0]}x{size[1]}.onnx"
    if not path.is_file():
        # In a child process: torch never enters this one, whose memory is what is measured.
        print(f"exporting {model} to {path}")
        subprocess.run([sys.executable, "-m", "segedge", "export", model, "-o", str(path),
                        "--input-size", f"{size[0]}x{size[1]}"], check=True)
    return path


def make_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` distinct images cycling through SIZES and the uint8 / uint16 / float32 dtypes."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        h, w = SIZES[i % len(SIZES)]
        kind = i % 3
        if kind == 0:
            images.append(rng.integers(0, 256, (h, w, 3), np.uint8))
        elif kind == 1:
            images.append(rng.integers(0, 65536, (h, w, 3), np.uint16))
        else:
            images.append(rng.random((h, w), np.float32))
    return images


def digest(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels).tobytes() + str(labels.shape).encode()).hexdigest()


def sample_memory(stop: threading.Event, done: list[int], samples: list[Sample], period_s: float) -> None:
    process, start = psutil.Process(), time.perf_counter()
    while not stop.is_set():
        samples.append(Sample(time.perf_counter() - start, done[0], process.memory_info().rss / 2**20))
        stop.wait(period_s)
    samples.append(Sample(time.perf_counter() - start, done[0], process.memory_info().rss / 2**20))


def slope_mb_per_1000(samples: list[Sample], warmup_calls: int) -> tuple[float, int]:
    """Least-squares slope of RSS against calls completed, over the samples after warm-up."""
    kept = [s for s in samples if s.calls >= warmup_calls]
    if len(kept) < 3 or len({s.calls for s in kept}) < 2:
        return float("nan"), len(kept)
    calls = np.array([s.calls for s in kept], np.float64)
    rss = np.array([s.rss_mb for s in kept], np.float64)
    slope = np.polyfit(calls, rss, 1)[0]
    return float(slope * 1000.0), len(kept)


def floor_slope_mb_per_1000(samples: list[Sample], warmup_calls: int, windows: int = 10) -> float:
    """The same fit over the lowest RSS of each of `windows` equal stretches of calls after warm-up.

    RSS at one instant includes the buffers of whatever calls are in flight; the floor of each
    stretch is what stays allocated between calls, which is where a leak would show.
    """
    kept = [s for s in samples if s.calls >= warmup_calls]
    if not kept:
        return float("nan")
    first, last = kept[0].calls, kept[-1].calls
    edges = np.linspace(first, last + 1, windows + 1)
    points = []
    for lo, hi in itertools.pairwise(edges):
        inside = [s for s in kept if lo <= s.calls < hi]
        if inside:
            low = min(inside, key=lambda s: s.rss_mb)
            points.append((low.calls, low.rss_mb))
    if len(points) < 3:
        return float("nan")
    calls, rss = np.array(points, np.float64).T
    return float(np.polyfit(calls, rss, 1)[0] * 1000.0)


def stretches(samples: list[Sample], calls: int, count: int = 10) -> list[tuple[int, int, float, float, float]]:
    """(first call, last call, min, mean, max RSS MB) for `count` equal stretches of the run."""
    rows = []
    for i in range(count):
        lo, hi = calls * i // count, calls * (i + 1) // count
        rss = [s.rss_mb for s in samples if lo <= s.calls < hi]
        if rss:
            rows.append((lo, hi - 1, min(rss), sum(rss) / len(rss), max(rss)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lraspp_mobilenet_v3_large")
    parser.add_argument("--export-size", type=int, default=256)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8, help="Python threads sharing the one Predictor.")
    parser.add_argument("--ort-threads", type=int, default=1, help="ONNX Runtime intra-op threads of the session.")
    parser.add_argument("--images", type=int, default=60, help="Distinct images (each seen calls/images times).")
    parser.add_argument("--warmup", type=float, default=0.3, help="Fraction of the calls counted as warm-up.")
    parser.add_argument("--name", default="soak", help="Results go to benchmarks/results/NAME.{md,json}.")
    parser.add_argument("--runtime", default="onnxruntime", help="The Predictor's runtime: onnxruntime or openvino.")
    args = parser.parse_args()

    path = model_path(args.model, (args.export_size, args.export_size))
    predictor = Predictor(path, "cpu", args.ort_threads, tile_size=TILE_SIZE, runtime=args.runtime)
    images = make_images(args.images)
    process = psutil.Process()
    rss_before = process.memory_info().rss / 2**20

    print(f"serial pass over {len(images)} images")
    start = time.perf_counter()
    serial = [digest(predictor.predict(image)) for image in images]
    serial_s = time.perf_counter() - start

    order = [i % len(images) for i in range(args.calls)]
    np.random.default_rng(1).shuffle(order)
    done, samples, stop = [0], [], threading.Event()
    lock = threading.Lock()

    def call(index: int) -> tuple[int, str]:
        result = digest(predictor.predict(images[index]))
        with lock:
            done[0] += 1
        return index, result

    print(f"{args.calls} calls from {args.threads} threads")
    sampler = threading.Thread(target=sample_memory, args=(stop, done, samples, 0.1), daemon=True)
    sampler.start()
    start = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        results = list(pool.map(call, order))
    soak_s = time.perf_counter() - start
    stop.set()
    sampler.join()

    mismatches = sum(1 for index, result in results if result != serial[index])
    warmup_calls = int(args.calls * args.warmup)
    slope, points = slope_mb_per_1000(samples, warmup_calls)
    floor_slope = floor_slope_mb_per_1000(samples, warmup_calls)
    warm = [s.rss_mb for s in samples if s.calls >= warmup_calls]
    record = {
        "model": args.model,
        "model_file": str(path),
        "runtime": args.runtime,
        "calls": args.calls,
        "threads": args.threads,
        "ort_threads": args.ort_threads,
        "tile_size": TILE_SIZE,
        "sizes": [list(s) for s in SIZES],
        "distinct_images": len(images),
        "serial_seconds": serial_s,
        "soak_seconds": soak_s,
        "calls_per_second": args.calls / soak_s,
        "identical_to_serial": mismatches == 0,
        "mismatches": mismatches,
        "warmup_calls": warmup_calls,
        "rss_mb_before_serial": rss_before,
        "rss_mb_after_warmup": warm[0] if warm else None,
        "rss_mb_end": samples[-1].rss_mb,
        "rss_mb_max": max(s.rss_mb for s in samples),
        "slope_mb_per_1000_calls": slope,
        "fit_points": points,
        "floor_slope_mb_per_1000_calls": floor_slope,
        "samples": [[round(s.seconds, 3), s.calls, round(s.rss_mb, 2)] for s in samples],
        "machine": machine_record(args.ort_threads),
    }
    cpu = record["machine"]["cpu"]
    lines = [
        f"# Soak: one Predictor, {args.calls} predictions from {args.threads} threads",
        "",
        (f"Model `{args.model}` (exported at {args.export_size}x{args.export_size}), "
         f"{'ORT CPU' if args.runtime == 'onnxruntime' else 'OpenVINO CPU'} with "
         f"{args.ort_threads} intra-op thread(s), tile size {TILE_SIZE}; {len(images)} distinct images of "
         f"{len(SIZES)} sizes ({', '.join(f'{h}x{w}' for h, w in SIZES)}) as uint8 RGB, uint16 RGB and float32 grey."),
        f"CPU: {cpu['model']} ({cpu['usable_cpus']} usable CPUs), shared with other work while it ran.",
        "",
        "| what | value |",
        "|---|---:|",
        f"| calls | {args.calls} |",
        f"| wall time | {soak_s:.1f} s ({args.calls / soak_s:.1f} calls/s) |",
        f"| results identical to a serial run | {'yes' if mismatches == 0 else f'NO: {mismatches} differ'} |",
        f"| RSS before the serial pass | {rss_before:.0f} MB |",
        f"| RSS after warm-up ({warmup_calls} calls) | {record['rss_mb_after_warmup']:.1f} MB |",
        f"| RSS at the end | {record['rss_mb_end']:.1f} MB |",
        f"| RSS max | {record['rss_mb_max']:.1f} MB |",
        f"| **RSS slope after warm-up** | **{slope:+.3f} MB per 1,000 calls** ({points} samples, least squares) |",
        f"| RSS floor slope after warm-up | {floor_slope:+.3f} MB per 1,000 calls (lowest RSS of 10 stretches) |",
        "",
        "| calls | RSS min MB | RSS mean MB | RSS max MB |",
        "|---|---:|---:|---:|",
        *(f"| {lo}-{hi} | {low:.0f} | {mean:.0f} | {high:.0f} |" for lo, hi, low, mean, high in stretches(samples, args.calls)),
        "",
        "RSS is sampled every 0.1 s with psutil; the slope is a least-squares line of RSS against calls",
        "completed, after the warm-up. Each threaded result's SHA-256 is compared with a serial pass",
        "over the same images before the threads start.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / f"{args.name}.md", "\n".join(lines))
    write_text_atomic(RESULTS / f"{args.name}.json", json.dumps(record, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
