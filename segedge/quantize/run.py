"""`segedge quantize`: an fp32 ONNX file to fp16 or int8, with its accuracy cost measured and recorded.

    fp32 file -> convert (exporters.fp16 / exporters.int8) -> measure against fp32 on images
              -> judge with the precision's preset -> card (precision, calibration, parity) -> file

The images the cost is measured on: the labelled `--data` folder (then mIoU points lost too),
else the calibration images, else a few generated shapes images ("real-looking" photos, without
labels that fit the model). `--precision auto` hands over to `segedge.precision.search`.
The output appears atomically; when the preset fails it is still written (as `export` does) and
the failure is raised afterwards, so the CLI exits 1 with the file there to inspect.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import onnx

from exporters.calibration import calibration_images
from exporters.card_io import embed_card
from exporters.fp16 import convert_fp16
from exporters.int8 import quantize_int8
from exporters.int8_options import DEFAULT_CALIB_COUNT, Method
from exporters.model_file import load_model, save_model
from exporters.qdq_debug import LayerReport, layer_errors
from runtimes.card import ModelCard
from runtimes.checks import PRESETS, Preset
from runtimes.errors import CardError, UsageError
from runtimes.fileio import ensure_writable, work_folder
from runtimes.image import load_image
from runtimes.session import check_model_path, open_session

from .agreement import Agreement, Sample, measure
from .report_data import labelled_pairs, read_pair

Progress = Callable[[str], None]
SYNTHETIC_IMAGES = 8
DEBUG_IMAGES = 8


class Precision(str, Enum):
    fp16 = "fp16"
    int8 = "int8"
    auto = "auto"


@dataclass(frozen=True)
class QuantizeRequest:
    model: Path
    precision: Precision
    output: Path | None = None
    calib: Path | None = None
    calib_count: int = DEFAULT_CALIB_COUNT
    method: Method = Method.minmax
    per_channel: bool = True
    exclude: tuple[str, ...] = ()
    budget: float = 1.0  # auto: mIoU points (with --data) or argmax-agreement points it may lose
    data: Path | None = None
    data_limit: int | None = None
    debug: bool = False
    runs: int = 10  # auto: timed runs per candidate


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    card: ModelCard
    agreement: Agreement
    failures: tuple[str, ...]
    layers: LayerReport | None
    trials: tuple  # segedge.precision.Trial rows of an auto search
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.failures


def default_output(request: QuantizeRequest) -> Path:
    stem = request.model.stem.removesuffix("_fp32")
    return request.model.with_name(f"{stem}_{request.precision.value}.onnx")


def run_quantize(request: QuantizeRequest, progress: Progress = lambda message: None) -> QuantizeResult:
    start = time.perf_counter()
    source = check_model_path(request.model)
    output = ensure_writable(request.output or default_output(request))
    card = fp32_card(source)
    images = check_calibration(request.precision, request.calib, request.calib_count)
    samples = sample_source(request, card, images)
    with work_folder("segedge-quantize-") as workdir:
        work = Path(workdir)
        trials: tuple = ()
        if request.precision is Precision.auto:
            from .precision import search

            chosen, trials = search(request, source, card, images, samples, work, progress)
            candidate, agreement, precision = chosen.path, chosen.agreement, chosen.precision
        else:
            candidate, precision = convert(request, source, work / "candidate.onnx", progress), request.precision.value
            progress(f"measuring {precision} against fp32 on {samples[1]}")
            agreement = compare_files(source, candidate, card, samples)
        layers = None
        if request.debug and precision == "int8":
            progress("comparing fp32 and int8 tensor by tensor")
            layers = layer_errors(source, candidate, images[:DEBUG_IMAGES], card)
        failures = judge(precision, agreement)
        model = load_model(candidate)
        final_card = record(model, source, agreement, failures, trials)
        save_model(embed_card(model, final_card), output)
    return QuantizeResult(output, final_card, agreement, tuple(failures), layers, trials, time.perf_counter() - start)


def check_calibration(precision: Precision, calib: Path | None, count: int) -> list[Path]:
    """The calibration images `precision` will use; fails before any work when they are missing."""
    if precision is not Precision.fp16 and calib is None:
        raise UsageError(f"--precision {precision.value} needs calibration images: --calib DIR")
    return calibration_images(calib, count) if calib is not None else []


def convert(request: QuantizeRequest, source: Path, target: Path, progress: Progress,
            exclude: tuple[str, ...] | None = None) -> Path:
    """fp16 or int8 (with `exclude`, default the request's) of `source` at `target`."""
    if request.precision is Precision.fp16:
        progress("converting to fp16")
        return convert_fp16(source, target)
    excluded = request.exclude if exclude is None else exclude
    progress(f"quantizing to int8 on {request.calib_count} calibration images ({request.method.value})")
    quantize_int8(source, target, request.calib, count=request.calib_count, method=request.method,
                  per_channel=request.per_channel, exclude=excluded)
    return target


def fp32_card(source: Path) -> ModelCard:
    from exporters.card_io import read_card_from_proto

    card = read_card_from_proto(load_model(source))
    if card is None:
        raise CardError(f"{source} has no segedge model card; quantize a model exported with `segedge export`")
    if card.precision != "fp32":
        raise UsageError(f"{source} is already {card.precision}; quantize the fp32 model")
    return card


SampleSource = tuple[Callable[[], Iterator[Sample]], str]


def sample_source(request: QuantizeRequest, card: ModelCard, images: list[Path]) -> SampleSource:
    """(a function giving the comparison samples afresh, what they are)."""
    if request.data is not None:
        pairs = labelled_pairs(request.data, request.data_limit)
        return (lambda: (read_pair(i, m) for i, m in pairs)), f"{len(pairs)} labelled images of {request.data}"
    if images:
        return (lambda: ((load_image(p), None) for p in images)), f"the {len(images)} calibration images"
    from .data.shapes import generate

    size = card.input_size
    return ((lambda: ((image, None) for image, _ in generate("val", SYNTHETIC_IMAGES, size, seed=1234))),
            f"{SYNTHETIC_IMAGES} generated shapes images of {size[0]}x{size[1]} (give --data or --calib for your own)")


def compare_files(reference: Path, candidate: Path, card: ModelCard, samples: SampleSource) -> Agreement:
    produce, description = samples
    return measure(open_session(reference, "cpu").run, open_session(candidate, "cpu").run, card, produce(), description)


def judge(precision: str, agreement: Agreement) -> list[str]:
    failures = [] if agreement.finite else ["outputs are not all finite"]
    if precision in ("fp16", "int8"):
        failures += PRESETS[Preset(precision)].failures(agreement.as_parity_report())
    return failures


def record(model: onnx.ModelProto, source: Path, agreement: Agreement, failures: list[str], trials: tuple) -> ModelCard:
    """The converted model's card with the measured parity (its precision and calibration are set)."""
    from exporters.card_io import read_card_from_proto

    card = read_card_from_proto(model)
    assert card is not None  # the converters keep the fp32 card they were given
    if card.precision == "fp32":  # auto kept fp32: its parity against PyTorch stays
        return card.with_overrides(parity={**card.parity, "search": [t.to_dict() for t in trials]})
    parity = {"reference": "fp32", "reference_file": os.path.basename(source), "provider": "cpu",
              **agreement.to_dict(), "preset": card.precision, "passed": not failures, "failures": failures}
    if trials:
        parity["search"] = [t.to_dict() for t in trials]
    return card.with_overrides(parity=parity)
