"""The steps `quantize` and its precision search share: find the images, convert, measure against fp32.

The images the cost is measured on: the labelled `--data` folder (then mIoU points lost too),
else the calibration images, else a few generated shapes images ("real-looking" photos, without
labels that fit the model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from exporters.calibration import calibration_images
from exporters.fp16 import convert_fp16
from exporters.int8 import quantize_int8
from runtimes.model.card import ModelCard
from runtimes.errors import UsageError
from runtimes.imaging.image import load_image
from runtimes.measure.parity import Parity, Sample, measure_images
from runtimes.model.precision import Precision
from runtimes.backends.selection import Runtime, open_model
from runtimes.backends.onnxruntime_session import open_session
from segedge.data.labelled import labelled_pairs, read_pair
from segedge.quantize.request import QuantizeRequest, Target

Progress = Callable[[str], None]
SYNTHETIC_IMAGES = 8
DEBUG_IMAGES = 8  # images `--debug` and the precision search compare tensor by tensor
SampleSource = tuple[Callable[[], Iterator[Sample]], str]  # (samples afresh, what they are)


def check_calibration(precision: Target, calib: Path | None, count: int) -> list[Path]:
    """The calibration images `precision` will use; fails before any work when they are missing."""
    if precision != Precision.fp16 and calib is None:
        raise UsageError(f"--precision {precision} needs calibration images: --calib DIR")
    return calibration_images(calib, count) if calib is not None else []


def convert(request: QuantizeRequest, precision: Precision, source: Path, target: Path, card: ModelCard,
            progress: Progress, exclude: tuple[str, ...] | None = None) -> Path:
    """`precision` (fp16 or int8, with `exclude`, default the request's) of `source` at `target`."""
    if precision is Precision.fp16:
        progress("converting to fp16")
        convert_fp16(source, target)
        return target
    excluded = request.exclude if exclude is None else exclude
    assert request.calib is not None  # check_calibration ran first
    used = len(calibration_images(request.calib, request.calib_count))  # fewer when the folder holds fewer
    if request.runtime is Runtime.openvino:
        from exporters.nncf_int8 import quantize_nncf

        progress(f"quantizing to int8 for OpenVINO with NNCF on {used} calibration images")
        quantize_nncf(source, target, request.calib, card=card, count=request.calib_count, exclude=excluded)
        return target
    progress(f"quantizing to int8 on {used} calibration images ({request.method.value})")
    quantize_int8(source, target, request.calib, count=request.calib_count, method=request.method,
                  per_channel=request.per_channel, exclude=excluded, card=card)
    return target


def source_card(source: Path, overrides: dict[str, Any]) -> ModelCard:
    """The card calibration and measuring use: the file's, or what inspection read (plus the options);
    its precision is the file's (fp16 inside, int8: `segedge.quantize.prepare` decides what to do)."""
    return open_session(source, "cpu", overrides=overrides).card


def sample_source(request: QuantizeRequest, card: ModelCard, images: list[Path]) -> SampleSource:
    """(a function giving the comparison samples afresh, what they are)."""
    if request.data is not None:
        pairs = labelled_pairs(request.data, request.data_limit)
        return (lambda: (read_pair(i, m) for i, m in pairs)), f"{len(pairs)} labelled images of {request.data}"
    if images:
        return (lambda: ((load_image(p), None) for p in images)), f"the {len(images)} calibration images"
    from segedge.data.shapes import generate

    size = card.input_size
    return ((lambda: ((image, None) for image, _ in generate("val", SYNTHETIC_IMAGES, size, seed=1234))),
            f"{SYNTHETIC_IMAGES} generated shapes images of {size[0]}x{size[1]} (give --data or --calib for your own)")


def compare_files(reference: Path, candidate: Path, card: ModelCard, samples: SampleSource,
                  overrides: dict[str, Any], runtime: Runtime = Runtime.onnxruntime) -> Parity:
    """The converted file measured against the fp32 one: fp32 on ONNX Runtime's CPU provider, the
    candidate on the runtime it was made for (OpenVINO at its own inference precision)."""
    produce, description = samples
    return measure_images(open_session(reference, "cpu", overrides=overrides).run,
                          open_model(candidate, runtime, "cpu", None, overrides=overrides).run, card, produce(),
                          description)
