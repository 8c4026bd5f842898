"""`segedge report --runtimes ...,web`: the fp32 file's web folder timed in headless Chromium, as one report row.

The row is timed after the interleaved rounds (the browser keeps its own clock) and carries the page's
output for the report's input, so the report measures its agreement with PyTorch fp32 as for any row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from runtimes.measure.timing import one_line
from runtimes.model.card import ModelCard
from runtimes.model.onnx_info import model_megabytes
from segedge.report.rows import ReportRow
from segedge.web.timed import RUNTIME, time_web_export, web_notes, web_provider


def web_row(fp32_onnx: Path, card: ModelCard, x: np.ndarray, out: Path, runs: int, warmup: int,
            progress: Callable[[str], None], *, threads: int | None = None,
            ort_web: Path | None = None) -> tuple[ReportRow, np.ndarray | None]:
    """The web row of `fp32_onnx` (described by `card`), its folder written at `out / "web"`, and the page's
    output for `x` (float32 N x 3 x H x W); a failed row with its reason and None when it cannot be timed.

    `threads`: WASM threads (default every core); `ort_web`: a local onnxruntime-web copy (default npm).
    Never raises for a runtime failure: no Chromium, no npm, a refused model and a failed page are rows.
    """
    folder = out / "web"
    row = ReportRow(precision="fp32", provider="wasm", runtime=RUNTIME, file=str(folder))
    try:
        timing = time_web_export(fp32_onnx, card, x, folder, runs=runs, warmup=warmup, threads=threads,
                                 ort_web=ort_web, progress=progress)
    except Exception as exc:  # a row saying why, as every runtime that cannot run here gets
        row.status, row.reason = "failed", one_line(exc)
        return row, None
    stats = timing.stats(f"fp32 / wasm / {RUNTIME}", RUNTIME, web_provider(timing), {}, web_notes(timing))
    row.provider, row.size_mb = stats.provider, model_megabytes(folder / "model.onnx")
    row.p50_ms, row.p90_ms, row.mean_ms, row.throughput = stats.p50_ms, stats.p90_ms, stats.mean_ms, stats.throughput
    row.setup_s, row.first_run_ms = stats.setup_s, stats.first_run_ms
    row.notes.extend(stats.notes)
    return row, timing.output
