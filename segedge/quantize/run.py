"""`segedge quantize`: an fp32 ONNX file to fp16 or int8, with its accuracy cost measured and recorded.

    fp32 file -> convert (exporters.fp16 / exporters.int8) -> measure against fp32 on images
              -> judge with the precision's preset -> card (precision, calibration, parity) -> file

`--precision auto` hands over to `segedge.quantize.search`. The output appears atomically; when
the preset fails it is still written (as `export` does) and the failure is reported in the
result, so the CLI exits 1 with the file there to inspect.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from exporters.calibration import shortfall
from exporters.card_io import embed_card, read_card_from_proto
from exporters.model_file import load_model, save_model
from exporters.qdq_debug import LayerReport, layer_errors
from runtimes.model.card import ModelCard
from runtimes.errors import ParityError
from runtimes.guards.fileio import ensure_writable, work_folder
from runtimes.guards.outputs import Input, check_outputs, inputs_of
from runtimes.measure.parity import Parity, judge, preset
from runtimes.model.precision import Precision
from runtimes.backends.selection import Runtime
from runtimes.backends.onnxruntime_session import check_model_path
from segedge.data.demo import with_demo_data
from segedge.data.labelled import labelled_pairs
from exporters.float_source import model_precision
from segedge.quantize.convert import DEBUG_IMAGES, check_calibration, compare_files, convert, sample_source, source_card
from segedge.quantize.prepare import float_source, refuse_quantized
from segedge.quantize.request import AUTO, QuantizeRequest

Progress = Callable[[str], None]


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    card: ModelCard
    agreement: Parity
    failures: tuple[str, ...]
    layers: LayerReport | None
    trials: tuple  # segedge.quantize.search.Trial rows of an auto search
    seconds: float
    warnings: tuple[str, ...] = ()  # for the caller to show: library code does not print
    notes: tuple[str, ...] = ()  # what was done to the source first (fp16 -> fp32, an opset upgrade), and its check

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.path.stat().st_size,
            "precision": self.card.precision.value,
            "passed": self.passed,
            "failures": list(self.failures),
            "seconds": self.seconds,
            "agreement": self.agreement.to_dict(),
            "calibration": self.card.calibration,
            "search": [t.to_dict() for t in self.trials],
            "layers": self.layers.to_dict() if self.layers else None,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def default_output(request: QuantizeRequest) -> Path:
    stem = request.model.stem.removesuffix("_fp32")
    return request.model.with_name(f"{stem}_{request.name}{request.suffix}")


def run_quantize(request: QuantizeRequest, progress: Progress = lambda message: None) -> QuantizeResult:
    start = time.perf_counter()
    source = check_model_path(request.model)
    output = ensure_writable(request.output or default_output(request))
    card = source_card(source, request.card_overrides)
    refuse_quantized(source, card, request.name)
    calib, data = with_demo_data(card, request.calib, request.data)  # demo weights bring their data along
    request = dataclasses.replace(request, calib=calib, data=data)
    images = check_calibration(request.precision, request.calib, request.calib_count)
    short = shortfall(request.calib, len(images), request.calib_count) if request.calib is not None else None
    samples = sample_source(request, card, images)
    in_place = check_outputs(_written(output), _read(request, source, images), overwrite=request.overwrite,
                             in_place=(MODEL,))
    with work_folder("segedge-quantize-") as workdir:
        work = Path(workdir)
        trials: tuple = ()
        steps: tuple[str, ...] = ()
        if request.precision != Precision.fp16:  # int8 needs an fp32 graph at opset 13 or later
            fp32, steps = float_source(source, card, samples, request.card_overrides, work, progress)
        else:
            fp32 = source
        card = card.with_overrides(precision=Precision.fp32.value) if steps else card
        if request.precision == AUTO:
            from segedge.quantize.search import search

            chosen, trials = search(request, fp32, card, images, samples, work, progress)
            candidate, agreement, precision = chosen.path, chosen.agreement, Precision(chosen.precision)
        else:
            precision = Precision(request.precision)
            candidate = convert(request, precision, fp32, work / f"candidate{request.suffix}", card, progress)
            progress(f"measuring {precision} against fp32 on {samples[1]}")
            agreement = compare_files(fp32, candidate, card, samples, request.card_overrides, request.runtime)
        layers = None
        if request.debug and precision is Precision.int8:
            progress("comparing fp32 and int8 tensor by tensor")
            layers = layer_errors(fp32, candidate, images[:DEBUG_IMAGES], card)
        if request.precision == AUTO:  # chosen as the fastest within the budget: judged by the budget
            failures = [] if chosen.within_budget else [
                f"every candidate loses more than --budget {request.budget:g} points (fp32 kept: {chosen.lost_points:.2f})"]
        else:
            failures = judge(agreement, preset(precision))
        if in_place and failures:  # converting in place: the original is replaced only by a result that passed
            raise ParityError(f"{source} kept as it was: its {precision} conversion fails the preset "
                              f"({'; '.join(failures)}); write it elsewhere with -o to inspect it")
        fallback = card.with_overrides(precision=precision)
        if candidate.suffix == ".xml":  # NNCF's IR for OpenVINO: its card lives in rt_info
            from exporters.nncf_int8 import ir_card, with_card

            final_card = with_steps(with_parity(ir_card(candidate) or fallback, source, agreement, failures, trials,
                                                request.runtime), steps, None)
            with_card(candidate, final_card, output)
        else:
            model = load_model(candidate)
            final_card = with_steps(record(model, source, agreement, failures, trials, fallback), steps,
                                    str(model_precision(model)) if card.graph_precision else None)
            save_model(embed_card(model, final_card), output)
    return QuantizeResult(output, final_card, agreement, tuple(failures), layers, trials, time.perf_counter() - start,
                          (short,) if short else (), steps)


def with_steps(card: ModelCard, steps: tuple[str, ...], graph_precision: str | None) -> ModelCard:
    """`card` with what was done to the source before quantizing, and the result's precision as its graph says it
    (files made from a foreign model, which had none written by segedge)."""
    calibration = {**card.calibration, "source_steps": list(steps)} if steps else card.calibration
    return dataclasses.replace(card, calibration=calibration, graph_precision=graph_precision)


def record(model: onnx.ModelProto, source: Path, agreement: Parity, failures: list[str], trials: tuple,
           fallback: ModelCard) -> ModelCard:
    """The converted model's card with the measured parity (its precision and calibration are set).

    The converters keep the card they were given; a model exported elsewhere had none, and gets
    `fallback` (what inspection read, the options and the new precision): the file now has a card.
    """
    return with_parity(read_card_from_proto(model) or fallback, source, agreement, failures, trials)


def with_parity(card: ModelCard, source: Path, agreement: Parity, failures: list[str], trials: tuple,
                runtime: Runtime = Runtime.onnxruntime) -> ModelCard:
    """`card` with the parity measured against the fp32 `source` (on `runtime`), and the search's trials."""
    if card.precision is Precision.fp32:  # auto kept fp32: its parity against PyTorch stays
        return card.with_overrides(parity={**card.parity, "search": [t.to_dict() for t in trials]})
    parity = {"reference": "fp32", "reference_file": os.path.basename(source), "provider": "cpu",
              "runtime": runtime.value, **agreement.to_dict(), "preset": card.precision.value, "passed": not failures,
              "failures": failures}
    if trials:
        parity["search"] = [t.to_dict() for t in trials]
    return card.with_overrides(parity=parity)


MODEL = "the model being converted"


def _written(output: Path) -> list[Path]:
    """The files the result is: one .onnx, or an OpenVINO IR's .xml and its .bin."""
    return [output, output.with_suffix(".bin")] if output.suffix.lower() == ".xml" else [output]


def _read(request: QuantizeRequest, source: Path, images: list[Path]) -> list[Input]:
    """Every file the run reads: none of them is ever an output (but MODEL, in place, with --overwrite)."""
    read: list[Input] = [(MODEL, source), *inputs_of("a calibration image", images)]
    if request.data is not None:
        pairs = labelled_pairs(request.data, request.data_limit)
        read += inputs_of("a labelled image", [i for i, _ in pairs]) + inputs_of("a label mask", [m for _, m in pairs])
    return read
