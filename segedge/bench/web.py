"""`segedge bench --compare web`: the benchmarked file as a web page runs it, timed in headless Chromium.

The row comes after the interleaved rounds (the browser keeps its own clock, `segedge.web.timed`), with
the same input, threads, warm-up and runs as the others, and says how it compares with PyTorch eager
when eager was timed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from runtimes.measure.timing import FailedRun, Row, TimingStats, one_line
from runtimes.model.card import ModelCard


def web_peer_row(model: Path, card: ModelCard, x: np.ndarray, folder: Path, *, threads: int, warmup: int, runs: int,
                 rows: Sequence[Row], progress: Callable[[str], None]) -> Row:
    """The web row of `model` (its folder written at `folder`), or a failed row with its reason."""
    name = f"onnxruntime-web {card.precision_label}"
    tags = {"precision": card.precision_label, "runtime": "onnxruntime-web", "provider": "wasm"}
    try:  # the folder's writer needs onnx (segedge[export]): a missing one is this row's failure alone
        from segedge.web.timed import RUNTIME, time_web_export, web_notes, web_provider

        timing = time_web_export(model, card, x, folder, runs=runs, warmup=warmup, threads=threads, progress=progress)
    except Exception as exc:  # no Chromium, no npm, a model the web target refuses, a failed page
        return FailedRun(name, "onnxruntime-web", "wasm", one_line(exc), tags)
    row = timing.stats(name, RUNTIME, web_provider(timing), tags, web_notes(timing))
    eager = next((r for r in rows if isinstance(r, TimingStats) and r.tags.get("runtime") == "torch"), None)
    if eager is None:
        return row
    ratio = (f"{eager.p50_ms / row.p50_ms:.2f}x eager: PyTorch eager's p50 {eager.p50_ms:.1f} ms over this row's "
             f"{row.p50_ms:.1f} ms (above 1: faster than eager)")
    return replace(row, notes=(*row.notes, ratio))
