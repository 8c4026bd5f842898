"""Peak memory of tiled prediction on a huge image: `predict`, and `predict --proba` streaming to a .npy.

    python benchmarks/bench_memory.py [--height 9000 --width 12000 --classes 21 --tile 1024]
                                      [--tree DIR ...]   # also measure another checkout's runtimes/

A cheap model (tests/tiny_models.py with 21 classes, exported once in a child process: torch never
enters the measured process) runs a 12000 x 9000 image in 1024 px tiles (overlap 256, the
Predictor's default of a quarter tile). Each scenario runs in a fresh process: the session is
opened and warmed on a tile batch first (its arena sized), then the peak resident memory is reset
(Linux: /proc/self/clear_refs) and the image made and predicted. "Above the session" is the peak
less the resident memory of the warm session; the 324 MB image and the 108 MB label map are in it.
For `--proba`, the anonymous and file-backed peaks are sampled apart: the probabilities
(21 x 108 MP float32, 9 GB) go through a memory-mapped file, whose written pages the kernel may
keep resident until it writes them back, but they are page cache it can reclaim, not the
process's own memory. Results: benchmarks/results/memory.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _status(key: str) -> float:
    """A /proc/self/status figure in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def measure(model: Path, scenario: str, height: int, width: int, tile: int, threads: int) -> dict:
    """One scenario in this process (run by the driver in a fresh one)."""
    import numpy as np

    from runtimes.predictor import Predictor

    predictor = Predictor(model, "cpu", threads, tile_size=tile)
    predictor.predict(np.zeros((tile, tile * 4, 3), np.uint8))  # a full batch of tiles: ORT's arena sized for it
    session_mb = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    peaks = {"RssAnon": _status("RssAnon"), "RssFile": _status("RssFile")}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            for key, peak in peaks.items():
                peaks[key] = max(peak, _status(key))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    image = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, 1000):  # a made-up photo: smooth, with blocks, made in place
        image[top : top + 1000] = rng.integers(0, 256, (1, width, 3), np.uint8)
    if scenario == "labels":
        labels = predictor.predict(image)
    else:
        from segedge.batch.jobs import segment

        with tempfile.TemporaryDirectory(dir=os.environ.get("SEGEDGE_BENCH_DIR")) as folder:
            segment(predictor, image, Path(folder) / "huge", overlay=False, proba=True)
            labels = None
            npy_gb = (Path(folder) / "huge_proba.npy").stat().st_size / 2**30
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    peak_mb = _status("VmHWM")
    record = {"scenario": scenario, "image": [height, width], "tile": tile, "seconds": round(seconds, 1),
              "session_rss_mb": round(session_mb), "peak_rss_mb": round(peak_mb),
              "peak_above_session_mb": round(peak_mb - session_mb),
              "peak_anon_mb": round(peaks["RssAnon"]), "peak_file_mb": round(peaks["RssFile"]),
              "image_mb": round(image.nbytes / 2**20), "classes": predictor.card.num_classes}
    if labels is not None:
        record["labels_mb"] = round(labels.nbytes / 2**20)
    else:
        record["npy_gb"] = round(npy_gb, 2)
    return record


def export_model(classes: int, tile: int) -> Path:
    cache = Path(tempfile.gettempdir()) / "segedge-bench-memory"
    path = cache / f"tiny_{classes}.onnx"
    if not path.is_file():
        subprocess.run([sys.executable, "-m", "segedge", "export", "tests/tiny_models.py:build", "--num-classes",
                        str(classes), "--input-size", f"{tile}x{tile}", "-o", str(path), "--exporter", "torchscript",
                        "--no-simplify"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=9000)
    parser.add_argument("--width", type=int, default=12000)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tree", action="append", default=[], help="Another checkout (e.g. `git archive` of HEAD~N) to measure too.")
    parser.add_argument("--scenarios", default="labels,proba")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "SCENARIO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the child: one measurement, as JSON on stdout
        print(json.dumps(measure(Path(args.one[0]), args.one[1], args.height, args.width, args.tile, args.threads)))
        return
    model = export_model(args.classes, args.tile)
    runs = []
    for tree, label in [(ROOT, "this tree"), *((Path(t), t) for t in args.tree)]:
        for scenario in args.scenarios.split(","):
            if scenario == "proba" and tree != ROOT:
                continue  # earlier trees held the probabilities in memory: 9 GB, past this machine's budget
            env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"}
            done = subprocess.run([sys.executable, __file__, "--one", str(model), scenario, "--height", str(args.height),
                                   "--width", str(args.width), "--tile", str(args.tile), "--threads", str(args.threads)],
                                  cwd=tree, env=env, capture_output=True, text=True, check=True)
            record = {"tree": label, **json.loads(done.stdout.strip().splitlines()[-1])}
            print(record, flush=True)
            runs.append(record)
    lines = [
        (f"# Peak memory of tiled prediction: {args.height} x {args.width} px ({args.height * args.width / 1e6:.0f} MP), "
         f"{args.classes} classes, {args.tile} px tiles"),
        "",
        ("`python benchmarks/bench_memory.py` (see its docstring for the method). Model: tests/tiny_models.py with "
         f"{args.classes} classes (cheap: the figures are segedge's buffers, not a network's activations); ORT CPU, "
         f"{args.threads} threads, overlap 256 px; this tree runs one 1024 px tile at a time here (its outputs are "
         "88 MB: runtimes.imaging.tiling.TILE_BATCH_BYTES), earlier ones 4."),
        "",
        "| code | scenario | peak above the warm session MB | peak RSS MB | anon peak MB | file-backed peak MB | s |",
        "|---|---|---:|---:|---:|---:|---:|",
        *((f"| {r['tree']} | {r['scenario']} | **{r['peak_above_session_mb']}** | {r['peak_rss_mb']} | "
           f"{r['peak_anon_mb']} | {r['peak_file_mb']} | {r['seconds']} |") for r in runs),
        "",
        (f"Held in every run: the image ({runs[0]['image_mb']} MB) and the label map (103 MB at 8 bits). `proba` "
         "streams the probabilities into a memory-mapped .npy (`segedge predict --proba`); its file-backed pages are "
         "page cache."),
        "",
    ]
    from runtimes.guards.fileio import write_text_atomic

    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "memory.json", json.dumps(runs, indent=2))
    write_text_atomic(RESULTS / "memory.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
