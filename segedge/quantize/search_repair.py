"""The repair search as a trial of `--precision auto` (`segedge.quantize.search` for ONNX Runtime,
`segedge.quantize.search_openvino` for OpenVINO): the search from a failed plain int8, its best step
timed beside the other precisions, the record of every step in the file's card."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from exporters.card_io import embed_card, read_card_from_proto
from exporters.model_file import load_model, save_model
from runtimes.backends.onnxruntime_session import open_session
from runtimes.model.card import ModelCard
from runtimes.model.precision import Precision
from segedge.quantize.adapters.base import Adapter, Candidate
from segedge.quantize.adapters.ort_qdq import OrtQdq
from segedge.quantize.convert import SampleSource
from segedge.quantize.judging import budget_judge, measured
from segedge.quantize.repair import Repair, Step, repair
from segedge.quantize.request import QuantizeRequest
from segedge.quantize.trial import Trial

Progress = Callable[[str], None]


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


def record_repair(path: Path, record: dict, target: Path | None = None) -> None:
    """The repair's record (what stays float and why, how to build it again) in the candidate's card: an ONNX
    file's, or an OpenVINO IR's (its weights unchanged). Written at `target` (atomically), else in place; an ONNX
    file without a card is written there as it is."""
    target = target or path
    if path.suffix == ".xml":
        from exporters.nncf_int8 import ir_card, with_card

        ir = ir_card(path)
        assert ir is not None, f"{path}: segedge's NNCF IRs all carry a card"
        with_card(path, _with_record(ir, record), target)
        return
    model = load_model(path)
    card = read_card_from_proto(model)
    save_model(model if card is None else embed_card(model, _with_record(card, record)), target)


def _with_record(card: ModelCard, record: dict) -> ModelCard:
    return card.with_overrides(calibration={**card.calibration, "repair": record})


def _trial(step: Step, result: Repair) -> Trial:
    c: Candidate = step.candidate
    agreement = step.measured.parity
    return Trial(Precision.int8, c.kept, step.path, agreement, step.measured.lost, step.measured.ok,
                 step.path.stat().st_size / 2**20, step=step.name, config=result.record())
