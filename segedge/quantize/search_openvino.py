"""`--precision auto --for openvino`: the fastest file OpenVINO runs within the accuracy budget.

Tried in order, each measured against fp32 (ONNX Runtime's CPU provider) with the candidate on
OpenVINO, as `segedge.quantize.search` measures ONNX Runtime's candidates: NNCF's int8; if that
loses more than the budget, NNCF's accuracy-controlled quantization (`nncf.quantize_with_accuracy_control`:
it gives layers back to float, most harmful first, until the metric drops by at most the budget;
the metric is mIoU on labelled `--data`, else agreement with fp32's label maps); fp32 as an IR
(OpenVINO runs it at its own inference precision). All are timed on OpenVINO in one interleaved
run, and the fastest within budget wins; fp32 is within it unless its bf16 run is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.model.card import ModelCard
from runtimes.measure.parity import measure_images
from runtimes.model.precision import Precision
from runtimes.backends.onnxruntime_session import as_model_feed, open_session
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
        progress(f"NNCF's accuracy-controlled quantization (at most {request.budget:g} points lost)")
        trials.append(judged(Precision.int8, _controlled(request, source, card, samples, work / "int8-ac.xml"),
                             ("NNCF accuracy control: layers it chose",)))
    trials.append(judged(Precision.fp32, _fp32_ir(source, card, work / "fp32.xml")))
    progress("timing every candidate on OpenVINO")
    timed = _time(trials, card, request.runs, request.card_overrides)
    chosen = min((t for t in timed if t.within_budget), key=lambda t: t.p50_ms, default=timed[-1])
    return chosen, tuple(timed)


def _controlled(request: QuantizeRequest, source: Path, card: ModelCard, samples: SampleSource, target: Path) -> Path:
    from exporters.nncf_int8 import quantize_nncf

    assert request.calib is not None  # check_calibration ran first
    items = list(samples[0]())
    reference = open_session(source, "cpu", overrides=request.card_overrides).run
    labelled = all(mask is not None for _, mask in items)

    def metric(compiled: Any, subset: Any) -> float:
        """mIoU against the labels, else agreement with fp32's label maps: higher is better."""
        run = _compiled_run(compiled, card)
        parity = measure_images(reference, run, card, list(subset), "validation")
        return float(parity.miou if labelled and parity.miou is not None else parity.argmax_agreement)

    quantize_nncf(source, target, request.calib, card=card, count=request.calib_count, exclude=request.exclude,
                  accuracy=metric, validation=items, max_drop=request.budget / 100.0)
    return target


def _compiled_run(compiled: Any, card: ModelCard) -> Callable[[np.ndarray], np.ndarray]:
    kind = compiled.inputs[0].get_element_type().get_type_name()
    input_type = {"f16": "tensor(float16)", "u8": "tensor(uint8)"}.get(kind, "tensor(float)")
    return lambda x: np.asarray(compiled(as_model_feed(x, card, input_type))[0], dtype=np.float32)


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
