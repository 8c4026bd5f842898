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

from exporters.card_io import embed_card, read_card_from_proto
from exporters.model_file import load_model, save_model
from runtimes.model.card import ModelCard
from runtimes.model.precision import Precision
from runtimes.backends.selection import Runtime
from runtimes.backends.onnxruntime_session import open_session
from runtimes.measure.timing import Runner, TimingStats, time_runners
from segedge.quantize.adapters.base import Adapter, Candidate
from segedge.quantize.adapters.ort_qdq import OrtQdq
from segedge.quantize.convert import SampleSource, compare_files, convert
from segedge.quantize.judging import budget_judge, lost_points, measured
from segedge.quantize.repair import Repair, Step, repair
from segedge.quantize.request import QuantizeRequest
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


def repaired(request: QuantizeRequest, source: Path, card: ModelCard, samples: SampleSource, work: Path,
             progress: Progress, plain: Trial, adapter: Adapter | None = None) -> list[Trial]:
    """The repair search from the failed plain int8 `plain` with `adapter` (default ONNX Runtime's QDQ): its best
    step as a trial to time (the chosen one, else the one that lost least), the record of every step in its
    `config` and in the file's card."""
    assert request.calib is not None  # check_calibration ran first
    adapter = adapter or OrtQdq(source, request.calib, request.calib_count, card, work, method=request.method,
                                per_channel=request.per_channel, exclude=request.exclude,
                                overrides=request.card_overrides)
    judge = budget_judge(open_session(source, "cpu", overrides=request.card_overrides).run, card, samples,
                         request.budget)
    start = Step("start", adapter.start, measured(plain.agreement, lambda lost: lost <= request.budget), plain.path,
                 0.0, adapter.reproduce(adapter.start))
    images = sum(1 for _ in samples[0]())
    result = repair(adapter, judge, images, work, progress, start=start)
    best = result.best
    if best is start:
        return []
    record_repair(best.path, result.record())
    return [_trial(best, result)]


def record_repair(path: Path, record: dict) -> None:
    """The repair's record (what stays float and why, how to build it again) in the candidate's card: an ONNX
    file's, or an OpenVINO IR's (rewritten in place, its weights unchanged)."""
    if path.suffix == ".xml":
        from exporters.nncf_int8 import ir_card, with_card

        ir = ir_card(path)
        if ir is not None:
            with_card(path, ir.with_overrides(calibration={**ir.calibration, "repair": record}), path)
        return
    model = load_model(path)
    card = read_card_from_proto(model)
    if card is not None:
        save_model(embed_card(model, card.with_overrides(calibration={**card.calibration, "repair": record})), path)


def _trial(step: Step, result: Repair) -> Trial:
    c: Candidate = step.candidate
    agreement = step.measured.parity
    return Trial(Precision.int8, c.kept, step.path, agreement, step.measured.lost, step.measured.ok,
                 step.path.stat().st_size / 2**20, step=step.name, config=result.record())


def _time(trials: list[Trial], card: ModelCard, runs: int, overrides: dict) -> list[Trial]:
    sessions = [open_session(t.path, "cpu", spinning=False, overrides=overrides) for t in trials]  # shared rounds
    runners = [Runner(t.label, "onnxruntime", "cpu", s.run) for t, s in zip(trials, sessions)]
    x = np.random.default_rng(0).standard_normal((1, 3, *card.input_size)).astype(np.float32)
    stats = time_runners(runners, lambda runner: x, batch=1, warmup=2, runs=runs)
    return [replace(t, p50_ms=s.p50_ms if isinstance(s, TimingStats) else float("nan")) for t, s in zip(trials, stats)]
