"""`segedge export SOURCE --target mlpackage`: a Core ML .mlpackage from a zoo model or a `file.py:function` one.

    the PyTorch model, its weights and card (segedge.export.run.prepared_model)
      -> exporters.targets.mlpackage.convert (coremltools: flexible H/W where it converts, else static, said;
         fp32 / fp16 compute, int8 weights)
      -> saved in a work folder, read back (the spec loads), its operators checked against coremltools' MIL
         registry, its input and output shapes checked against the card -> moved into place whole

Numerics and speed are not checked here: Core ML runs only on Apple's systems. `segedge verify
MODEL.mlpackage` on a Mac compares the package with the PyTorch model (segedge.parity.mlpackage).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporters.targets import TargetBuildError, TargetResult, get_target
from exporters.targets.coreml_quiet import coremltools
from exporters.targets.folders import check_folder_output, place_folder
from exporters.targets.mlpackage import DEPLOYMENT, INPUT_NAME, OUTPUT_NAME, convert, save, set_metadata
from exporters.targets.mlpackage_spec import MlPackageInfo, check_mil_ops, read_mlpackage
from runtimes.model.card import ModelCard
from runtimes.errors import ExportError, InputFileError, UsageError
from runtimes.guards.fileio import work_folder
from runtimes.model.precision import Precision
from segedge.export.run import ExportRequest, export_inputs, prepared_model
from segedge.export.target import TargetExport, is_onnx_source

Progress = Callable[[str], None]
SUFFIX = ".mlpackage"


def run_mlpackage_export(request: ExportRequest, progress: Progress = lambda message: None) -> TargetExport:
    """Write the .mlpackage at `request.output` (default `./<name>.mlpackage`)."""
    spec = get_target("mlpackage")
    precision = str(request.precision)
    if precision not in spec.precisions:
        raise UsageError(f"target mlpackage takes --precision {' or '.join(spec.precisions)}, not {precision}")
    if is_onnx_source(request.source):
        raise UsageError("target mlpackage converts the PyTorch model (coremltools reads no ONNX): give a zoo name "
                         "or file.py:function")
    if request.output is not None and request.output.suffix.lower() != SUFFIX:
        raise UsageError(f"target mlpackage writes a {SUFFIX} package; the output {request.output.name} has another suffix")
    ct = coremltools()
    read = [("the input model", request.source), *export_inputs(request)]
    if request.output is not None:
        check_folder_output(request.output, read, is_segedge_package, overwrite=request.overwrite)
    request, model, card, notes = prepared_model(dataclasses.replace(request, precision=Precision.fp32), progress)
    output = request.output or Path(f"{card.name}{SUFFIX}")
    check_folder_output(output, read, is_segedge_package, overwrite=request.overwrite)
    progress(f"converting {card.name} with coremltools {ct.__version__} ({precision})")
    converted = convert(model, card, precision)
    card = card.with_overrides(dynamic=converted.flexible, precision=precision, exporter=f"coremltools {ct.__version__}",
                               opset=None, input_name=INPUT_NAME, output_name=OUTPUT_NAME, parity={})
    with work_folder("segedge-mlpackage-") as work:
        staged = work / f"model{SUFFIX}"
        save(converted.model, staged)
        progress("reading the package back: spec, operators, shapes")
        info = read_mlpackage(staged)
        check = check_mil_ops(info, DEPLOYMENT)
        if check.blocking:
            listed = ", ".join(f"{row.op_type} ({row.reason})" for row in check.unsupported[:5])
            raise TargetBuildError(f"nothing written: Core ML ({DEPLOYMENT}) has no operator {listed}", (check,))
        check_shapes(info, card, converted.ranges)
        set_metadata(converted.model, card, _record(card, precision, converted, check))
        save(converted.model, staged)
        place_folder(staged, output)
    shape = None if converted.flexible else (1, 3, *card.input_size)
    said = [converted.note] if converted.note else [f"flexible H, W: {converted.ranges[0][0]}..{converted.ranges[0][1]}"  # type: ignore[index]
                                                   f" in multiples of {card.size_divisor}"]
    result = TargetResult(
        target=spec.name, source=Path(request.source), artefacts=(output,), card=card, input_shape=shape, opset=0,
        precision=precision, checks=(check,), verification=None, not_checked=spec.not_checked,
        notes=(*notes, *said, spec.note,
               "int8: per-channel symmetric int8 weights (linear_quantize_weights), fp16 compute" if precision == "int8"
               else f"{'fp32' if precision == 'fp32' else 'fp16'} compute precision",
               f"minimum deployment target {DEPLOYMENT} (ML Program)"),
    )
    return TargetExport(result, None)


def is_segedge_package(folder: Path) -> bool:
    try:
        return read_mlpackage(folder).card is not None
    except (InputFileError, ExportError, UsageError):
        return False


def check_shapes(info: MlPackageInfo, card: ModelCard, ranges: tuple[tuple[int, int], ...] | None) -> None:
    """The package's image input and logits output are what the card says, or nothing is written."""
    problems = []
    if [t.name for t in info.inputs] != [INPUT_NAME] or not info.inputs[0].kind.startswith("image RGB"):
        problems.append(f"input {[t.describe() for t in info.inputs]}, expected one RGB image {INPUT_NAME!r}")
    elif info.inputs[0].shape != tuple(card.input_size) or info.inputs[0].ranges != (ranges or ()):
        problems.append(f"input {info.inputs[0].describe()}, expected {card.input_size} with ranges {ranges}")
    outputs = [t for t in info.outputs if t.name == OUTPUT_NAME]
    channels = card.num_classes if card.output_kind not in ("sigmoid", "logit") else 1
    if len(outputs) != 1:
        problems.append(f"outputs {[t.name for t in info.outputs]}, expected {OUTPUT_NAME!r}")
    elif outputs[0].shape and (outputs[0].shape[:2] != (1, channels)
                               or (not ranges and outputs[0].shape[2:] != tuple(card.input_size))):
        problems.append(f"output {outputs[0].describe()}, expected 1 x {channels} x H x W")
    if problems:
        raise ExportError("the converted package is not what the card says: " + "; ".join(problems))


def _record(card: ModelCard, precision: str, converted: Any, check: Any) -> dict[str, Any]:
    return {"target": "mlpackage", "runtime": get_target("mlpackage").runtime, "precision": precision,
            "deployment": DEPLOYMENT, "input": {"name": INPUT_NAME, "size": list(card.input_size),
                                                "flexible": converted.flexible,
                                                "ranges": [list(r) for r in converted.ranges or ()]},
            "checks": [{"check": check.check, "nodes": check.nodes, "supported": check.supported}]}
