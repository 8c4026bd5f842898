"""The export pipeline: build -> (weights) -> export -> simplify -> parity -> card -> one file.

Every step reports what it did; a failed simplification keeps the unsimplified graph and says so;
the final file appears atomically, whole, or not at all.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx

from exporters.card_io import embed_card
from exporters.checkpoint import fit_state_dict, load_state_dict
from exporters.int8_options import DEFAULT_CALIB_COUNT
from exporters.simplify import simplify
from exporters.torch_to_onnx import DEFAULT_OPSET, Exporter, LogitsOnly, export_onnx
from runtimes.model.card import ModelCard
from runtimes.errors import ExportError, UsageError
from runtimes.guards.fileio import atomic_path, ensure_writable, work_folder
from runtimes.guards.outputs import Input, check_outputs, inputs_of
from runtimes.measure.parity import PRESETS, ParityCheck, check_sizes
from runtimes.model.precision import Precision
from runtimes.backends.onnxruntime_session import open_session

from segedge.data.demo import is_demo
from segedge.export.dry_run import dry_run
from segedge.parity.reference import torch_runner
from segedge.parity.run import other_size
from segedge.quantize.request import Target
from segedge.sources import build

if TYPE_CHECKING:
    from segedge.quantize.run import QuantizeResult

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportRequest:
    source: str
    output: Path | None = None
    weights: Path | None = None
    num_classes: int | None = None
    input_size: tuple[int, int] | None = None
    dynamic: bool = True
    opset: int = DEFAULT_OPSET
    exporter: Exporter = Exporter.dynamo
    simplify: bool = True
    card_fields: dict = field(default_factory=dict)
    build_options: dict = field(default_factory=dict)  # builder keywords, e.g. {"padding": "same"}
    precision: Target = Precision.fp32  # fp16 / int8 / auto: the fp32 export is then quantized (segedge.quantize)
    calib: Path | None = None
    overwrite: bool = False  # replace an existing file segedge did not write
    output_key: str | None = None  # which entry of a dict / tuple / ModelOutput holds the logits (default: pick_logits')
    side_range: tuple[int, int] | None = None  # --target executorch: the dynamic sides' bounds


@dataclass(frozen=True)
class ExportResult:
    path: Path
    card: ModelCard
    simplified: bool
    simplify_message: str
    parity: list[ParityCheck]
    notes: list[str]
    seconds: float
    quantized: QuantizeResult | None = None

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.parity) and (self.quantized is None or self.quantized.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.path.stat().st_size,
            "simplified": self.simplified,
            "simplify_message": self.simplify_message,
            "seconds": self.seconds,
            "passed": self.passed,
            "parity": [p.to_dict() for p in self.parity],
            "notes": self.notes,
            "card": self.card.to_dict(),
            **({"quantized": self.quantized.to_dict()} if self.quantized else {}),
        }


def default_output(card: ModelCard) -> Path:
    return Path(f"{card.name}.onnx")


def run_export(request: ExportRequest, progress: Progress = lambda message: None) -> ExportResult:
    start = time.perf_counter()
    read = export_inputs(request)
    if request.output is not None:
        check_outputs([request.output], read, overwrite=request.overwrite)
        ensure_writable(request.output)
    request, wrapped, card, notes = prepared_model(request, progress)
    if request.precision != Precision.fp32:  # a missing calibration folder fails now, not after the export
        from segedge.quantize.convert import check_calibration

        check_calibration(request.precision, request.calib, DEFAULT_CALIB_COUNT)
    input_size = card.input_size
    output = ensure_writable(request.output or default_output(card))
    check_outputs([output], read, overwrite=request.overwrite)

    with work_folder("segedge-export-") as workdir:
        raw = Path(workdir) / "raw.onnx"
        progress(f"exporting {card.name} with the {request.exporter.value} exporter")
        proto = export_onnx(
            wrapped, raw, input_size=input_size, dynamic=request.dynamic,
            opset=request.opset, exporter=request.exporter,
            output_axes=("H", "W") if card.output_stride == 1 and card.valid_margin == 0 else ("H_out", "W_out"),
        )
        notes += _batch_note(proto, request.dynamic)
        simplified, message = False, "not simplified (--no-simplify)"
        if request.simplify:
            progress("simplifying with onnxsim")
            result = simplify(proto, (1, 3, *input_size))
            proto, simplified, message = result.model, result.simplified, result.message
        candidate = Path(workdir) / "model.onnx"
        _save(embed_card(proto, card), candidate)

        progress("checking parity against PyTorch")
        sizes = [input_size] + ([other_size(card, input_size)] if request.dynamic else [])
        session = open_session(candidate, "cpu")
        parity = check_sizes(torch_runner(wrapped), session.run, card, sizes, PRESETS[Precision.fp32])
        card = card.with_overrides(parity=_parity_summary(parity))
        if request.precision != Precision.fp32:
            quantized = _quantize(request, embed_card(proto, card), Path(workdir), output, progress)
            return ExportResult(output, quantized.card, simplified, message, parity, notes,
                                time.perf_counter() - start, quantized)
        with atomic_path(output, suffix=".onnx") as tmp:
            _save(embed_card(proto, card), tmp)
    return ExportResult(output, card, simplified, message, parity, notes, time.perf_counter() - start)


def prepared_model(request: ExportRequest,
                   progress: Progress) -> tuple[ExportRequest, LogitsOnly, ModelCard, list[str]]:
    """The model an export converts: built, its weights loaded (demo ones trained if absent), logits
    only, in eval mode, and its card checked by a dry run; the request as the demo weights complete it."""
    if is_demo(request.weights):
        request = _with_demo_weights(request, progress)
    built = build(request.source, num_classes=request.num_classes, options=request.build_options)
    model, card = built.module, built.card
    notes: list[str] = []
    if request.weights is not None:
        progress(f"loading weights {request.weights}")
        notes += fit_state_dict(model, load_state_dict(request.weights), card.name)
    input_size = request.input_size or card.input_size
    card = card.with_overrides(
        input_size=input_size,
        dynamic=request.dynamic,
        opset=request.opset,
        exporter=request.exporter.value,
        output_key=request.output_key,
        **request.card_fields,
    )
    wrapped = LogitsOnly(model, request.output_key).eval()
    checked = dry_run(card, wrapped, input_size, request.card_fields.get("size_divisor"))
    return request, wrapped, checked.card, notes + checked.notes


def _with_demo_weights(request: ExportRequest, progress: Progress) -> ExportRequest:
    """`--weights demo`: the cached demo checkpoint (trained now if absent), the dataset's classes,
    the training record in the card, and its train split to calibrate on when none is given."""
    from segedge.train.demo import demo_model, demo_options

    trained = demo_model(request.source, progress)
    options, fields = demo_options(trained)
    if request.num_classes not in (None, options["num_classes"]):
        raise UsageError(f"--weights demo: the demo weights have {options['num_classes']} classes "
                         f"({', '.join(fields['classes'])}); drop --num-classes")
    calib = request.calib if request.calib is not None or request.precision == Precision.fp32 else trained.data
    return dataclasses.replace(request, weights=trained.checkpoint, num_classes=None, calib=calib,
                               build_options={**request.build_options, **options},
                               card_fields={**fields, **request.card_fields})


def _quantize(request: ExportRequest, proto: onnx.ModelProto, workdir: Path, output: Path,
              progress: Progress) -> QuantizeResult:
    from segedge.quantize import QuantizeRequest, run_quantize

    fp32 = workdir / f"{output.stem}_fp32.onnx"
    _save(proto, fp32)
    quantize = QuantizeRequest(model=fp32, precision=request.precision, output=output, calib=request.calib,
                               overwrite=request.overwrite)
    return run_quantize(quantize, progress)


def _batch_note(proto: onnx.ModelProto, dynamic: bool) -> list[str]:
    """Why a dynamic export's output batch came out fixed, when it did (the graph then takes that batch only)."""
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    if not dynamic or not dims or not dims[0].HasField("dim_value"):
        return []
    return [f"the exporter fixed the output's batch to {dims[0].dim_value} (the model's code specialised it); "
            "run it one batch of that size at a time, or export with --exporter torchscript"]


def _parity_summary(parity: list[ParityCheck]) -> dict:
    return {
        "reference": "pytorch",
        "provider": parity[0].provider,
        "sizes": [
            {
                "size": list(p.size or ()),
                "max_abs": p.parity.max_abs,
                "logits_range": p.parity.logits_range,
                "argmax_agreement": p.parity.argmax_agreement,
                "sqnr_db": p.parity.sqnr_db if p.parity.sqnr_db != float("inf") else None,
            }
            for p in parity
        ],
    }


def export_inputs(request: ExportRequest) -> list[Input]:
    """The files an export reads, none of which it may write: the checkpoint, the user's model file, calibration."""
    read: list[Input] = inputs_of("--weights", [request.weights] if request.weights is not None else [])
    source_file = request.source.rpartition(":")[0]
    if source_file.endswith(".py"):
        read.append(("the model's source file", source_file))
    if request.calib is not None and request.calib.is_dir():
        from exporters.calibration import image_files

        read += inputs_of("a calibration image", image_files(request.calib, "calibration"))
    return read


def _save(proto: onnx.ModelProto, path: Path) -> None:
    try:
        onnx.save(proto, os.fspath(path))
    except ValueError as exc:  # protobuf refuses messages over 2 GB
        raise ExportError(f"cannot save {path}: {exc}") from None
