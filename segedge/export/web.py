"""`segedge export SOURCE --target web -o DIR`: the web folder of a zoo model, a user model or an ONNX file.

    zoo / user model -> segedge's export (fp32, or int8 through segedge's quantizer and its preset)
                        in a work folder ─┐
    MODEL.onnx (its card read, or the card options describing a file exported elsewhere) ─┴->
        exporters.targets.web (operator check, model + card.json + segedge.js + index.html + serve.py
        + onnxruntime-web, moved into place whole)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from exporters.targets import CheckReport, get_target
from exporters.targets.ort_web import check_ort_web_source
from exporters.targets.web import check_web_output, write_web_folder
from runtimes.errors import UsageError
from runtimes.guards.fileio import work_folder
from runtimes.model.precision import Precision
from runtimes.backends.onnxruntime_session import open_session
from segedge.export.run import ExportRequest, export_inputs, run_export
from segedge.export.target import TargetExport, is_onnx_source

Progress = Callable[[str], None]


def run_web_export(request: ExportRequest, progress: Progress = lambda message: None,
                   on_checks: Callable[[tuple[CheckReport, ...]], None] | None = None,
                   ort_web: Path | None = None) -> TargetExport:
    """Write the web folder at `request.output` (default `./<name>_web`)."""
    precisions = get_target("web").precisions
    if str(request.precision) not in precisions:
        raise UsageError(f"target web takes --precision {' or '.join(precisions)}, not {request.precision}")
    check_ort_web_source(ort_web)
    if is_onnx_source(request.source):
        source = Path(request.source)
        if request.precision != Precision.fp32:
            raise UsageError("an ONNX file goes into the web folder as it is: quantize it first "
                             "(segedge quantize MODEL.onnx --precision int8) and export the int8 file")
        card = open_session(source, "cpu", overrides=request.card_fields).card
        result = write_web_folder(source, request.output or Path(f"{source.stem}_web"), card, ort_web=ort_web,
                                  on_checks=on_checks, progress=progress, overwrite=request.overwrite)
        return TargetExport(result, None)
    read = [("the input model", request.source), *export_inputs(request)]
    if request.output is not None:  # refused now, not after the export
        check_web_output(request.output, read, overwrite=request.overwrite)
    with work_folder("segedge-export-web-") as workdir:
        exported = run_export(dataclasses.replace(request, output=Path(workdir) / "model.onnx"), progress)
        card = open_session(exported.path, "cpu").card
        result = write_web_folder(exported.path, request.output or Path(f"{card.name}_web"), card, ort_web=ort_web,
                                  on_checks=on_checks, progress=progress, overwrite=request.overwrite, inputs=read)
    shipped = result.artefacts[1]  # the work folder is gone: the export's record names the file in the web folder
    quantized = dataclasses.replace(exported.quantized, path=shipped) if exported.quantized is not None else None
    return TargetExport(result, dataclasses.replace(exported, path=shipped, quantized=quantized))
