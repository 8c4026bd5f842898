"""Issue 17's numbers: `segedge predict` in one process vs `--engine ray` with 1 and 2 workers.

    python benchmarks/bench_ray.py [--rounds 3] [--small 2] [--models deeplabv3plus:12,lraspp_mobilenet_v3_large:60]
    python benchmarks/bench_ray.py --models tiny:200 --out ray_overhead

Per model (exported once at 512x512 into --workdir), the same 512x512 JPEG photos are segmented
by every configuration, in interleaved rounds (each configuration in turn, then again), each job
from scratch: the local loop of `segedge predict` (Predictor built, then `jobs.segment` per image)
with 1 and 2 threads, and `predict_on_ray` (the actor pool of `--engine ray`) with 1 worker x 1
thread, 1 worker x 2 threads and 2 workers x 1 thread, on one local Ray instance started once
(its start is timed on its own). Each configuration runs a short job (--small images) and a long
one: their difference is the time per image, free of what a job pays once (for Ray: the actors'
start and model load). Wall time and CPU time (this process and all its descendants: the Ray
instance and its workers) both: on a shared machine under load, wall time also measures the
neighbours. Also the bytes one image's outputs take, what a driver-writes design would ship to the
driver. Writes benchmarks/results/ray.{md,json}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from runtimes.guards.fileio import write_text_atomic
from runtimes.measure.machine import machine_record
from runtimes.predictor import Predictor
from segedge.batch.cluster import RayCluster
from segedge.batch.jobs import find_images, output_paths, output_stem, segment
from segedge.batch.ray_predict import SegmentSpec, predict_on_ray

RESULTS = Path(__file__).parent / "results"
CONFIGS = [("local", 1, 1), ("local", 1, 2), ("ray", 1, 1), ("ray", 1, 2), ("ray", 2, 1)]  # engine, workers, threads


def photos(folder: Path, count: int) -> list[tuple[Path, Path]]:
    """`count` 512x512 JPEGs: smooth colour fields with noise and a few shapes, as a camera gives."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:512, 0:512] / 512.0
    for i in range(count):
        base = np.stack([np.sin(3 * xx + i), np.cos(2 * yy - i), np.sin(xx * yy * 5 + i / 3)], axis=-1)
        rgb = (base * 60 + 128 + rng.normal(0, 12, (512, 512, 3))).clip(0, 255).astype(np.uint8)
        for _ in range(6):
            y, x, h, w = rng.integers(0, 400, 4) // np.array([1, 1, 3, 3])
            rgb[y:y + h, x:x + w] = rng.integers(0, 256, 3)
        Image.fromarray(rgb).save(folder / f"{i:03d}.jpg", quality=90)
    return find_images([folder], recursive=False)[:count]


def export(name: str, workdir: Path) -> Path:
    """The zoo model `name` exported at 512x512, once; "tiny": the tests' 4-class SmallFieldNet, whose
    few milliseconds per image leave Ray's own cost per image in plain sight."""
    if name == "tiny":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/
        from tests.predictor_models import build_predictor_models

        return build_predictor_models(workdir / "tiny").multiclass
    path = workdir / f"{name}.onnx"
    if not path.is_file():
        from segedge.export.run import ExportRequest, run_export

        run_export(ExportRequest(source=name, output=path, input_size=(512, 512)))
    return path


class CpuMeter:
    """CPU seconds this process and all its descendants (the Ray instance, its workers) spend while
    it runs: on a shared, loaded machine wall time says as much about the neighbours as about the
    job, CPU time does not. Descendants are sampled every 0.1 s, so an actor's last moment is missed."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        for process in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                self.seen[process.pid] = max(self.seen.get(process.pid, 0.0), times.user + times.system)

    def __enter__(self) -> CpuMeter:
        self._sample()
        self.before = dict(self.seen)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stop.wait(0.1):
            self._sample()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()
        self.seconds = sum(t - self.before.get(pid, 0.0) for pid, t in self.seen.items())


def run_local(model: Path, jobs: list[tuple[Path, Path]], out: Path, threads: int) -> None:
    """The whole job as `segedge predict`'s loop does it: the Predictor built, then each image."""
    predictor = Predictor(model, threads=threads)
    for source, relative in jobs:
        segment(predictor, source, output_stem(out, relative), False, False)


def run_ray(model: Path, jobs: list[tuple[Path, Path]], out: Path, workers: int, threads: int) -> None:
    """The whole job on the actor pool: actors started, each building its Predictor, then the images."""
    summary = predict_on_ray(SegmentSpec(str(model)), jobs, out, RayCluster(workers=workers, threads_per_worker=threads))
    assert summary.done == len(jobs) and summary.workers == min(workers, len(jobs)), summary


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `run`."""
    start = time.perf_counter()
    with CpuMeter() as meter:
        run()
    return time.perf_counter() - start, meter.seconds


def bench_model(name: str, model: Path, jobs: list[tuple[Path, Path]], small: int, rounds: int, scratch: Path) -> dict:
    """Each configuration on the first `small` images and on all of them, interleaved; the difference
    of the two gives the time per image, free of what a job pays once (start, model load)."""
    seconds: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for round_ in range(rounds):
        for engine, workers, threads in CONFIGS:
            label = f"{engine} {workers}x{threads}"
            for count in (small, len(jobs)):
                out = scratch / f"{name}-{round_}-{label.replace(' ', '-')}-{count}"
                some = jobs[:count]
                took = timed(lambda: run_local(model, some, out, threads) if engine == "local"
                             else run_ray(model, some, out, workers, threads))
                seconds.setdefault(label, {}).setdefault(count, []).append(took)
                print(f"{name} round {round_} {label} {count} images: {took[0]:.2f} s wall, {took[1]:.2f} s CPU", flush=True)
                shutil.rmtree(out)
    rows = {}
    for label, by_count in seconds.items():
        row: dict[str, float] = {}
        for i, kind in enumerate(("wall", "cpu")):
            t_small, t_all = (statistics.median(run[i] for run in by_count[n]) for n in (small, len(jobs)))
            per_image = (t_all - t_small) / (len(jobs) - small)
            row |= {f"{kind}_small_s": t_small, f"{kind}_all_s": t_all, f"{kind}_per_image_s": per_image,
                    f"{kind}_fixed_s": t_small - small * per_image}
        rows[label] = row | {"images_per_s": len(jobs) / row["wall_all_s"]}
    return {"model": name, "images": len(jobs), "small": small, "seconds": seconds, "rows": rows,
            "output_bytes": output_bytes(model, jobs[0])}


def output_bytes(model: Path, job: tuple[Path, Path]) -> dict[str, int]:
    """What one image's outputs weigh: what actors writing them spares the driver's network link."""
    folder = RESULTS.parent / ".bench_ray_sizes"
    stem = output_stem(folder, job[1])
    segment(Predictor(model, threads=2), job[0], stem, True, True)
    sizes = {path.name.split("_")[-1]: path.stat().st_size for path in output_paths(stem, True, True)}
    shutil.rmtree(folder)
    return sizes


def table(result: dict) -> list[str]:
    rows = result["rows"]
    lines = [f"### `{result['model']}`: jobs of {result['small']} and {result['images']} images",
             "",
             "| engine | workers x threads | images/s, whole job | s per image (wall) | fixed s per job (wall) | "
             "CPU s per image | fixed CPU s per job |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for label, row in rows.items():
        engine, shape = label.split()
        lines.append(f"| {engine} | {shape} | {row['images_per_s']:.2f} | {row['wall_per_image_s']:.2f} | "
                     f"{row['wall_fixed_s']:.1f} | {row['cpu_per_image_s']:.2f} | {row['cpu_fixed_s']:.1f} |")
    local, ray1, ray2 = rows["local 1x1"], rows["ray 1x1"], rows["ray 2x1"]
    sizes = result["output_bytes"]
    lines += ["", f"Ray's overhead per image (1 worker x 1 thread vs the local loop on 1 thread): "
                  f"{ray1['cpu_per_image_s'] - local['cpu_per_image_s']:+.3f} CPU s on {local['cpu_per_image_s']:.3f}, "
                  f"{ray1['wall_per_image_s'] - local['wall_per_image_s']:+.2f} s wall on {local['wall_per_image_s']:.2f}; "
                  f"per job: {ray1['cpu_fixed_s'] - local['cpu_fixed_s']:+.1f} CPU s, "
                  f"{ray1['wall_fixed_s'] - local['wall_fixed_s']:+.1f} s wall (actors start, import, load the model). "
                  f"2 workers x 1 thread vs 1 worker, s per image: {ray1['wall_per_image_s'] / ray2['wall_per_image_s']:.2f}x.",
              "", f"One image's outputs: mask {sizes['mask.png'] / 1e3:.1f} kB, overlay {sizes['overlay.png'] / 1e3:.0f} kB, "
                  f"probabilities {sizes['proba.npy'] / 1e6:.1f} MB."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=2, help="images in the short job of each pair")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="deeplabv3plus:12,lraspp_mobilenet_v3_large:60",
                        help="NAME:IMAGES,...: each zoo model and the images of its long job (some seconds of work)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/segedge-bench-ray"))
    parser.add_argument("--out", default="ray", help="results/OUT.{md,json}")
    args = parser.parse_args()
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    start = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ray_start_s = time.perf_counter() - start
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = [(name, int(count)) for name, count in (entry.split(":") for entry in args.models.split(","))]
    jobs = photos(args.workdir / "photos", max(count for _, count in models))
    results = [bench_model(name, export(name, args.workdir), jobs[:count], args.small, args.rounds, args.workdir / "out")
               for name, count in models]
    ray.shutdown()
    cpu: dict = machine_record()["cpu"]  # type: ignore[assignment]
    load = os.getloadavg()
    lines = ["# `segedge predict`: one process vs `--engine ray` (a local Ray instance), 512x512 photos", "",
             f"CPU: {cpu['model']}, {cpu['usable_cpus']} usable CPUs (flags: {' '.join(cpu['flags'])}); "
             f"median of {args.rounds} interleaved rounds; starting the local Ray instance took {ray_start_s:.1f} s "
             f"(once per command); load average at the end {load[0]:.1f} (1 min).", ""]
    for result in results:
        lines += table(result) + [""]
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / f"{args.out}.md", "\n".join(lines))
    write_text_atomic(RESULTS / f"{args.out}.json", json.dumps({"ray_start_s": ray_start_s, "results": results,
                                                        "machine": machine_record()}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
