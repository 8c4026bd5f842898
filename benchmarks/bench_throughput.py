"""Throughput of `segedge predict` on a folder and on a video: overlapped vs sequential vs the model alone.

    python benchmarks/bench_throughput.py --model lraspp.onnx --model deeplabv3plus_int8.xml \
        [--images 24] [--rounds 3] [--threads 2]

Made at run time, outside the timings: N synthetic 1280 x 960 JPEG photos (quality 90) and an
H.264 video of the same frames (`--images` frames at 10 fps). For each model, in interleaved
rounds (every mode once per round, the modes' order rotated), images per second of:

- model alone: the runtime's run on one prepared 1280 x 960 input, N times (`predictor.session.run`),
  in a session opened as `Predictor` and `segedge bench` open it (ONNX Runtime's threads spin-wait);
- model alone, brief spin (ONNX Runtime only): the same in the session `segedge predict` opens
  (`spinning=False`: its idle threads spin 100 us, then park, leaving the cores to decoding and encoding);
- predict loop: `Predictor.predict` on the decoded arrays, no file I/O;
- folder, sequential: the loop `segedge predict FOLDER` ran before issue 32 (`jobs.segment` per image:
  decode, predict, write the palette PNG), one image after another;
- folder, overlapped: what `segedge predict FOLDER` runs now (`segedge.batch.folder.segment_overlapped`,
  in `segedge predict`'s session);
- video, sequential: decode a frame, `predict`, encode it into the mask video, then the next;
- video, overlapped: what `segedge predict clip.mp4` runs now (`segedge.batch.video.predict_video`,
  in `segedge predict`'s session).

The sequential modes and the predict loop run in the first session (the path before issue 32).
Besides images per second, the CPU time each mode takes per image (all threads, `time.process_time`)
is recorded: on a loaded machine it says where the work around the model went when wall times
cannot.

The folder and video modes call the same functions as the CLI with the Predictor already built,
so the figures leave out the CLI's start (imports and model load, a few seconds on a busy
machine). Each mode's figure is the median over rounds; ratios are of medians. The load average
before and after is recorded: the machine may be shared. Results: benchmarks/results/throughput.md
and .json (or --out). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_predictor import synthetic_image  # noqa: E402

from runtimes import Predictor  # noqa: E402
from runtimes.measure.machine import cpu_info  # noqa: E402
from runtimes.imaging.preprocess import to_model_input  # noqa: E402
from runtimes.stream.sources import Video  # noqa: E402
from runtimes.stream.writers import mask_video  # noqa: E402
from segedge.batch.folder import segment_overlapped  # noqa: E402
from segedge.batch.jobs import find_images, output_stem, segment  # noqa: E402
from segedge.batch.video import VideoPlan, VideoSummary, predict_video  # noqa: E402

HEIGHT, WIDTH, RATE = 960, 1280, 10
MODES = ("model alone", "model alone, brief spin", "predict loop", "folder, sequential", "folder, overlapped",
         "video, sequential", "video, overlapped")


def make_inputs(folder: Path, count: int) -> tuple[Path, Path, list[np.ndarray]]:
    """`count` JPEG photos in folder/photos and the same frames as folder/clip.mp4 (H.264, 10 fps)."""
    import av

    photos = folder / "photos"
    photos.mkdir()
    frames = [synthetic_image(HEIGHT, WIDTH, seed=i) for i in range(count)]
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(photos / f"{i:04d}.jpg", quality=90)
    clip = folder / "clip.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=RATE, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = i
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return photos, clip, frames


def modes(predictor: Predictor, brief: Predictor, photos: Path, clip: Path, frames: list[np.ndarray],
          scratch: Path) -> dict[str, Callable[[], int]]:
    """Each mode as a function that does its work once and returns how many images it did.

    `predictor`: opened as `Predictor` opens a file by default; `brief`: as `segedge predict` opens it."""
    jobs = find_images([photos], recursive=False)
    x, _ = to_model_input(frames[0], predictor.card)
    batch = np.ascontiguousarray(x[None])

    def model_alone() -> int:
        for _ in frames:
            predictor.session.run(batch)
        return len(frames)

    def model_alone_brief() -> int:
        for _ in frames:
            brief.session.run(batch)
        return len(frames)

    def predict_loop() -> int:
        for frame in frames:
            predictor.predict(frame)
        return len(frames)

    def folder_sequential() -> int:
        out = _fresh(scratch / "folder_sequential")
        for source, relative in jobs:
            segment(predictor, source, output_stem(out, relative), overlay=False, proba=False)
        return len(jobs)

    def folder_overlapped() -> int:
        out = _fresh(scratch / "folder_overlapped")
        failed = segment_overlapped(brief, jobs, out, False, lambda job, error: None)
        assert not failed
        return len(jobs)

    def video_sequential() -> int:
        out = _fresh(scratch / "video_sequential")
        with Video(str(clip)) as video:
            writer = mask_video(out / "clip_mask.mkv", classes=max(predictor.card.num_classes, 2), rate=Fraction(RATE),
                                time_base=video.time_base)
            try:
                for frame in video.frames():  # a file: decoded as it is read, in this thread
                    writer.write(predictor.predict(frame.rgb), frame.pts)
            finally:
                writer.close()
        return writer.frames

    def video_overlapped() -> int:
        out = _fresh(scratch / "video_overlapped")
        summary = VideoSummary()
        with Video(str(clip)) as video:
            predict_video(brief, video, VideoPlan(out), summary, lambda frame: None)
        return summary.frames

    runs = dict(zip(MODES, (model_alone, model_alone_brief, predict_loop, folder_sequential, folder_overlapped,
                            video_sequential, video_overlapped)))
    if brief is predictor:  # a runtime without spinning threads: one session, nothing to compare
        del runs["model alone, brief spin"]
    return runs


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def measure(name: str, predictors: tuple[Predictor, Predictor], runs: dict[str, Callable[[], int]], rounds: int,
            warm_up: np.ndarray) -> dict:
    load_before, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for _ in range(2):  # the runtime's first runs (allocations, thread pools) are not timed
        for predictor in {id(p): p for p in predictors}.values():
            predictor.predict(warm_up)
    per_mode: dict[str, list[float]] = {mode: [] for mode in runs}
    cpu_ms: dict[str, list[float]] = {mode: [] for mode in runs}
    order = list(runs)
    for round_ in range(rounds):
        shift = round_ % len(order)
        for mode in order[shift:] + order[:shift]:
            start, cpu = time.perf_counter(), time.process_time()
            done = runs[mode]()
            per_mode[mode].append(done / (time.perf_counter() - start))
            cpu_ms[mode].append(1000 * (time.process_time() - cpu) / done)
        print(f"{name} round {round_ + 1}: " + ", ".join(f"{m} {v[-1]:.2f}" for m, v in per_mode.items()), flush=True)
    load_after = os.getloadavg()
    median = {mode: statistics.median(values) for mode, values in per_mode.items()}
    # the faster of the two sessions' model alone: the overlapped modes are held to the best the model does
    model = max(value for mode, value in median.items() if mode.startswith("model alone"))
    predictor = predictors[0]
    return {
        "model": name,
        "started": started,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "runtime": predictor.runtime,
        "providers": list(predictor.providers),
        "images_per_s": median,
        "rounds": per_mode,
        "cpu_ms_per_image": {mode: statistics.median(values) for mode, values in cpu_ms.items()},
        "cpu_ms_rounds": cpu_ms,
        "of_model_alone": {mode: value / model for mode, value in median.items()},
        "overlapped_vs_sequential": {
            "folder": median["folder, overlapped"] / median["folder, sequential"],
            "video": median["video, overlapped"] / median["video, sequential"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], type=Path, help="an .onnx (ONNX Runtime) or IR .xml (OpenVINO)")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "throughput")
    parser.add_argument("--merge", action="store_true", help="keep the other models' rows of the results at --out")
    parser.add_argument("--note", action="append", default=[], help="a line for the results (the weights, the load)")
    parser.add_argument("--render", action="store_true", help="only write the .md again from the .json at --out")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.out.with_suffix(".json").read_text())
        saved["notes"] = saved.get("notes", []) + args.note
        args.out.with_suffix(".json").write_text(json.dumps(saved, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(markdown(saved))
        return
    if not args.model:
        parser.error("give at least one --model (or --render)")
    results = {"notes": args.note, "machine": cpu_info(), "lscpu": _lscpu(), "threads": args.threads, "images": args.images,
               "size": f"{WIDTH}x{HEIGHT}", "models": []}
    with tempfile.TemporaryDirectory(prefix="segedge-throughput-") as tmp:
        scratch = Path(tmp)
        photos, clip, frames = make_inputs(scratch, args.images)
        for path in args.model:
            predictor = Predictor(path, threads=args.threads)
            # `segedge predict`'s session: ONNX Runtime's idle threads spin briefly, then park (segedge/cli/predict_cmd.py)
            brief = Predictor(path, threads=args.threads, spinning=False) if predictor.runtime == "onnxruntime" else predictor
            row = measure(path.name, (predictor, brief), modes(predictor, brief, photos, clip, frames, scratch),
                          args.rounds, frames[0])
            results["models"].append({"images": args.images, **row})
    earlier = args.out.with_suffix(".json")
    if args.merge and earlier.is_file():  # another model's rows from an earlier run: kept, with their own machine and load
        measured = {row["model"] for row in results["models"]}
        before = json.loads(earlier.read_text())
        kept = [{"images": before["images"], **row} for row in before["models"] if row["model"] not in measured]
        results["models"] = kept + results["models"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    machine = results["machine"]
    lines = [
        "# Throughput: `segedge predict` on a folder and on a video (issue 32)",
        "",
        f"Machine: {machine['model']}, {machine['logical_cores']} logical cores, {machine['usable_cpus']} usable; "
        f"`lscpu` flags that matter for inference: {' '.join(machine['flags']) or 'none of note'} (the whole `lscpu` "
        f"report is in the .json). Threads per model: {results['threads']}. "
        f"Images of {results['size']}; each measurement segments the number of images its row names. Load average (1, 5, 15 min) before and "
        "after each model's run: " + "; ".join(f"{row['model']} ({row['started']}): {_load(row['load_average_before'])}"
                                              f" -> {_load(row['load_average_after'])}" for row in results["models"]) + ".",
        "",
        "Images per second (median of the interleaved rounds) and each mode's ratio to the model alone (the faster of"
        " its two sessions where there are two):",
        "",
        "| model | " + " | ".join(MODES) + " | overlapped / sequential (folder, video) |",
        "|---|" + "---:|" * (len(MODES) + 1),
    ]
    for row in results["models"]:
        cells = [f"{row['images_per_s'][m]:.2f} ({row['of_model_alone'][m]:.2f})" if m in row["images_per_s"] else "-"
                 for m in MODES]
        ratio = row["overlapped_vs_sequential"]
        lines.append(f"| {row['model']} ({row['runtime']}, {row['images']} images) | " + " | ".join(cells) + f" | {ratio['folder']:.2f}, {ratio['video']:.2f} |")
    lines += ["", "CPU time per image (ms, all threads of the process; median of the rounds):", "",
              "| model | " + " | ".join(MODES) + " |", "|---|" + "---:|" * len(MODES)]
    for row in results["models"]:
        spent = row.get("cpu_ms_per_image", {})
        lines.append(f"| {row['model']} | " + " | ".join(f"{spent[m]:.0f}" if m in spent else "-" for m in MODES) + " |")
    if results.get("notes"):
        for note in results["notes"]:
            lines += ["", f"Note: {note}"]
    lines += ["", "Every round (images/s):", ""]
    for row in results["models"]:
        for mode in MODES:
            if mode in row["rounds"]:
                lines.append(f"- {row['model']}, {mode}: " + ", ".join(f"{v:.2f}" for v in row["rounds"][mode]))
    return "\n".join(lines) + "\n"


def _lscpu() -> str:
    """`lscpu`'s report (its flags line included), for the JSON; empty where there is no lscpu."""
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _load(values) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
