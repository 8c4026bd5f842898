"""`--precision auto --for openvino`: the fastest file OpenVINO runs within the accuracy budget.

Tried in order, each measured against fp32 (ONNX Runtime's CPU provider) with the candidate on
OpenVINO, as `segedge.quantize.search` measures ONNX Runtime's candidates: NNCF's int8; if that
loses more than the budget, segedge's repair search with the NNCF adapter (`segedge.quantize.repair`,
the steps every runtime gets: NNCF's `mixed` preset, then the layers whose float recovers most kept
in float through NNCF's ignored scope, one more at a time; judged by mIoU on labelled `--data`, else
argmax agreement with fp32), which is what NNCF's own accuracy-controlled quantization does, with
each step's cost recorded in the card; fp32 as an IR (OpenVINO runs it at its own inference
precision). All are timed on OpenVINO in one interleaved run, and the fastest within budget wins;
fp32 is within it unless its bf16 run is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.model.card import ModelCard
from runtimes.model.precision import Precision
from runtimes.measure.timing import TimingStats, time_runners
from segedge.quantize.convert import SampleSource, compare_files, convert
from segedge.quantize.judging import lost_points
from segedge.quantize.request import QuantizeRequest
from segedge.quantize.trial import Trial

Progress = Callable[[str], None]


def search_openvino(request: QuantizeRequest, source: Path, card: ModelCard, samples: SampleSource, work: Path,
                    progress: Progress) -> tuple[Trial, tuple[Trial, ...]]:
    def judged(precision: Precision, target: Path, excluded: tuple[str, ...] = ()) -> Trial:
        progress(f"measuring {precision} on OpenVINO against fp32 on {samples[1]}")
        agreement = compare_files(source, target, card, samples, request.card_overrides, request.runtime)
        lost = lost_points(agreement) if agreement.finite else float("inf")
        size = sum(p.stat().st_size for p in (target, target.with_suffix(".bin"))) / 2**20
        return Trial(precision, excluded, target, agreement, lost, lost <= request.budget, size)

    trials = [judged(Precision.int8, convert(request, Precision.int8, source, work / "int8.xml", card, progress))]
    if not trials[0].within_budget:
        from segedge.quantize.adapters.openvino_nncf import NncfOpenVINO
        from segedge.quantize.search_repair import repaired

        assert request.calib is not None  # check_calibration ran first
        repair_work = work / "repair"
        repair_work.mkdir()
        adapter = NncfOpenVINO(source, request.calib, request.calib_count, card, repair_work,
                               exclude=request.exclude, overrides=request.card_overrides)
        trials += repaired(request, source, card, samples, repair_work, progress, trials[0], adapter)
    trials.append(judged(Precision.fp32, _fp32_ir(source, card, work / "fp32.xml")))
    progress("timing every candidate on OpenVINO")
    timed = _time(trials, card, request.runs, request.card_overrides)
    chosen = min((t for t in timed if t.within_budget), key=lambda t: t.p50_ms, default=timed[-1])
    return chosen, tuple(timed)


def _fp32_ir(source: Path, card: ModelCard, target: Path) -> Path:
    from exporters.nncf_int8 import save_ir
    from runtimes.backends.openvino_session import import_openvino

    return save_ir(import_openvino().Core().read_model(str(source)), card, target)


def _time(trials: list[Any], card: ModelCard, runs: int, overrides: dict) -> list[Any]:
    from runtimes.backends.openvino_timing import session_runner
    from runtimes.backends.openvino_session import open_openvino

    runners = [session_runner(open_openvino(t.path, overrides=overrides), 0.0, name=t.label) for t in trials]
    x = np.random.default_rng(0).standard_normal((1, 3, *card.input_size)).astype(np.float32)
    stats = time_runners(runners, lambda runner: x, batch=1, warmup=2, runs=runs)
    return [replace(t, p50_ms=s.p50_ms if isinstance(s, TimingStats) else float("nan")) for t, s in zip(trials, stats)]
