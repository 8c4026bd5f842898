"""`segedge export --target`: the artefact an edge runtime needs, from a zoo or user model or an ONNX file.

    zoo / user model -> the fp32 export (segedge.export.run, in a work folder) ─┐
    MODEL.onnx (segedge's, or exported elsewhere: its card read or inspected)  ─┴-> exporters.targets
        (static shape, opset, QNN QDQ, ORT format, OpenVINO IR; the target's checks, before writing;
         the artefact run here and judged against the fp32 file where this machine can)

The target table and the writers are `exporters.targets`; this module only chooses the fp32
source and hands the request over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporters.targets import CheckReport, TargetResult
from runtimes.model.card import ModelCard
from runtimes.errors import UsageError
from runtimes.guards.fileio import work_folder
from runtimes.guards.outputs import check_outputs
from runtimes.model.precision import Precision
from segedge.quantize.request import AUTO
from runtimes.backends.onnxruntime_session import open_session
from segedge.export.run import ExportRequest, ExportResult, export_inputs, prepared_model, run_export
from segedge.parity.reference import torch_runner

Progress = Callable[[str], None]
OnChecks = Callable[[tuple[CheckReport, ...]], None]


@dataclass(frozen=True)
class TargetExport:
    target: TargetResult
    export: ExportResult | None  # the fp32 export it was built from (None: given an ONNX file)

    @property
    def passed(self) -> bool:
        exported = self.export is None or self.export.passed
        return exported and (self.target.verification is None or self.target.verification.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "target": self.target.to_dict(),
                "export": self.export.to_dict() if self.export is not None else None}


def is_onnx_source(source: str) -> bool:
    return source.endswith(".onnx") and Path(source).is_file()


def run_target_export(request: ExportRequest, target: str, progress: Progress = lambda message: None,
                      on_checks: OnChecks | None = None) -> TargetExport:
    """Build `target`'s artefact at `request.output` (default: `<name>_<target><suffix>` here)."""
    from exporters.targets import build_for_target, default_output, get_target, sidecars

    if get_target(target).builds_from_torch:
        return _from_torch(request, target, progress, on_checks)
    precision = None if request.precision == Precision.fp32 else str(request.precision)
    if request.output is not None:  # refused now, not after the export
        check_outputs((request.output, *sidecars(request.output, get_target(target))),
                      [("the input model", request.source), *export_inputs(request)], overwrite=request.overwrite)
    if is_onnx_source(request.source):
        source = Path(request.source)
        # A file exported elsewhere: what inspection read plus the card options describe it.
        card = open_session(source, "cpu", overrides=request.card_fields).card
        output = request.output or default_output(source, target)
        result = build_for_target(source, target, output, input_size=request.input_size,
                                  calib=_calibration(request, target, card),
                                  card=card, precision=precision, on_checks=on_checks, progress=progress,
                                  overwrite=request.overwrite, quantizer=_repairing(target, progress))
        return TargetExport(result, None)
    with work_folder("segedge-export-target-") as workdir:
        fp32 = Path(workdir) / "model_fp32.onnx"
        exported = run_export(dataclasses.replace(request, output=fp32, precision=Precision.fp32), progress)
        output = request.output or default_output(Path(f"{exported.card.name}.onnx"), target)
        result = build_for_target(fp32, target, output, input_size=request.input_size,
                                  calib=_calibration(request, target, exported.card), precision=precision,
                                  on_checks=on_checks, progress=progress, overwrite=request.overwrite,
                                  quantizer=_repairing(target, progress))
    return TargetExport(result, dataclasses.replace(exported, path=result.path))


def _from_torch(request: ExportRequest, target: str, progress: Progress, on_checks: OnChecks | None) -> TargetExport:
    """LiteRT and ExecuTorch: the runtime's own converter reads the PyTorch model, not an ONNX file."""
    from exporters.targets import TARGETS
    from exporters.targets.from_torch import TorchTargetRequest, build_from_torch, default_output

    if is_onnx_source(request.source):
        onnx_targets = ", ".join(name for name, spec in TARGETS.items() if spec.builds_from_onnx)
        raise UsageError(f"target {target} converts the PyTorch model with its runtime's own converter, not an ONNX "
                         f"file: give a zoo name or file.py:function (an ONNX file takes --target {onnx_targets})")
    auto = str(request.precision) == AUTO
    if str(request.precision) not in ("fp32", "int8", AUTO):
        raise UsageError(f"target {target} takes --precision fp32, int8 or auto, not {request.precision}")
    request, model, card, notes = prepared_model(request, progress)
    torch_request = TorchTargetRequest(
        target=target, output=request.output or default_output(card.name, target), input_size=card.input_size,
        precision="int8" if auto else str(request.precision), static=not request.dynamic,
        side_range=request.side_range, layout=card.layout, calib=request.calib, overwrite=request.overwrite)
    read = (("the input model", request.source), *export_inputs(request))
    repairer = _torch_repair(target, request, card, progress) if auto else None
    result = build_from_torch(model, card, torch_request, torch_runner(model), read=read, on_checks=on_checks,
                              progress=progress, repair=repairer)
    return TargetExport(dataclasses.replace(result, notes=(*notes, *result.notes)), None)


def _torch_repair(target: str, request: ExportRequest, card: ModelCard, progress: Progress) -> Any:
    """`--precision auto` for ExecuTorch and LiteRT: int8 with segedge's repair search (issue 30) on the target's own
    quantizer, within `quantize`'s default budget, judged on the labelled data demo weights bring (mIoU points), else
    on the calibration images (argmax-agreement points)."""
    from exporters.calibration import calibration_images
    from segedge.data.demo import with_demo_data
    from segedge.quantize.convert import sample_source
    from segedge.quantize.request import QuantizeRequest

    if request.calib is None:
        raise UsageError(f"--precision auto for {target} calibrates on images: give --calib DIR "
                         "(or --weights demo, which brings its data)")
    _, data = with_demo_data(card, request.calib, None)
    quantize = QuantizeRequest(model=Path(card.name), precision=Precision.int8, calib=request.calib, data=data)
    samples = sample_source(quantize, card, calibration_images(request.calib, quantize.calib_count))
    if target == "litert":
        from segedge.quantize.adapters.litert_aeq import repairing_litert

        return repairing_litert(card, samples, quantize.budget, progress)
    from segedge.quantize.adapters.pt2e import repairing_pt2e

    return repairing_pt2e(card, samples, quantize.budget, progress)


def _repairing(target: str, progress: Progress) -> Any:
    """QNN quantizes with segedge's repair search (issue 30): calibration, weight scheme, then 16-bit weights
    on the layers that cost most, until the target's own check passes."""
    if target != "qnn":
        return None
    from segedge.quantize.adapters.qnn_qdq import repairing_quantizer

    return repairing_quantizer(progress)


def _calibration(request: ExportRequest, target: str, card: ModelCard | None) -> Path | None:
    """--calib, else for the QNN target (which quantizes) the train split of the demo dataset the card names."""
    if request.calib is not None or target != "qnn":
        return request.calib
    from segedge.data.demo import with_demo_data

    return with_demo_data(card, None, None)[0]
