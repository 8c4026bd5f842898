"""`--precision auto`: the fastest precision that stays within an accuracy budget.

Tried in order: int8; if int8 loses more than the budget, the repair search
(`segedge.quantize.repair`: other calibration methods, per-channel weights, then the layers whose
float recovers most kept in float, one more at a time, until one is within budget); fp16; fp32. Each is measured against fp32 on the
same images (`segedge.quantize.convert.sample_source`): the loss is mIoU points on labelled `--data`, else
points of argmax agreement with fp32. All candidates are then timed in one interleaved run
(`runtimes.measure.timing.time_runners`) and the fastest within budget wins; fp32 is always within it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from runtimes.model.card import ModelCard
from runtimes.model.precision import Precision
from runtimes.backends.selection import Runtime
from runtimes.backends.onnxruntime_session import open_session
from runtimes.measure.timing import Runner, TimingStats, time_runners
from segedge.quantize.convert import SampleSource, compare_files, convert
from segedge.quantize.judging import lost_points
from segedge.quantize.request import QuantizeRequest
from segedge.quantize.search_repair import repaired
from segedge.quantize.trial import Trial

Progress = Callable[[str], None]


def search(request: QuantizeRequest, source: Path, card: ModelCard, images: list[Path], samples: SampleSource,
           work: Path, progress: Progress) -> tuple[Trial, tuple[Trial, ...]]:
    """Try the precisions, time them, return (the chosen trial, every trial)."""
    if request.runtime is Runtime.openvino:  # NNCF's candidates, timed on OpenVINO
        from segedge.quantize.search_openvino import search_openvino

        return search_openvino(request, source, card, samples, work, progress)

    def attempt(precision: Precision, exclude: tuple[str, ...] = ()) -> Trial:
        target = work / f"{precision}{'-excl' if exclude else ''}.onnx"
        if precision is Precision.fp32:
            shutil.copyfile(source, target)
        else:
            convert(request, precision, source, target, card, progress, exclude)
        progress(f"measuring {precision} against fp32 on {samples[1]}")
        agreement = compare_files(source, target, card, samples, request.card_overrides)
        lost = lost_points(agreement) if agreement.finite else float("inf")
        return Trial(precision, exclude, target, agreement, lost, lost <= request.budget, target.stat().st_size / 2**20)

    trials = [attempt(Precision.int8, request.exclude)]
    if not trials[0].within_budget:
        trials += repaired(request, source, card, samples, work, progress, trials[0])
    trials += [attempt(Precision.fp16), attempt(Precision.fp32)]
    progress("timing every candidate")
    timed = _time(trials, card, request.runs, request.card_overrides)
    chosen = min((t for t in timed if t.within_budget), key=lambda t: t.p50_ms)
    return chosen, tuple(timed)


def _time(trials: list[Trial], card: ModelCard, runs: int, overrides: dict) -> list[Trial]:
    sessions = [open_session(t.path, "cpu", spinning=False, overrides=overrides) for t in trials]  # shared rounds
    runners = [Runner(t.label, "onnxruntime", "cpu", s.run) for t, s in zip(trials, sessions)]
    x = np.random.default_rng(0).standard_normal((1, 3, *card.input_size)).astype(np.float32)
    stats = time_runners(runners, lambda runner: x, batch=1, warmup=2, runs=runs)
    return [replace(t, p50_ms=s.p50_ms if isinstance(s, TimingStats) else float("nan")) for t, s in zip(trials, stats)]
