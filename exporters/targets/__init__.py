"""Edge targets: from one fp32 ONNX file to the artefact each device runtime needs, checked and verified.

The entry point (what `segedge export --target` calls):

    from exporters.targets import build_for_target

    result = build_for_target("model.onnx", "qnn", "model_qnn.onnx", input_size=(512, 512),
                              calib="photos/", on_checks=print_table)
    result.unsupported         # rows (op_type, node, reason, check): the table to print
    result.checks              # per check: nodes, supported, falling_back, partitions, caveats
    result.verification        # argmax agreement, class IoU vs the fp32 file, passed / failures
    result.not_built, result.not_checked   # what only the device can build or tell
    result.to_dict()           # for --json

`target` is a name of `TARGETS` (cpu, gpu, mobile, nnapi, coreml, qnn, openvino, tensorrt) or a
`Target`. `on_checks(reports)` runs after the checks and before anything is written, so the CLI
can print the table first; a check that says the runtime refuses the model (no fallback) raises
`TargetBuildError` (an `ExportError`) whose `.checks` hold the reports. Everything else raises
segedge's typed errors (UsageError for a bad request, CardError, ModelFileError, ExportError).

`read_artefact_metadata(path)` reads the card and the target record back from an .onnx, .ort or
OpenVINO .xml file (`.shape_constraints()` is `segedge info`'s line). The table itself
(`exporters.targets.table`: `TARGETS`, `target_names()`, `get_target()`) imports nothing heavy,
for the CLI's option choices and help.

Files: table.py (the targets, data), prepare.py (static shape, opset), checks.py (operator checks),
qnn_ops.py / tensorrt_ops.py (sourced op lists), qnn.py, ort_format.py, openvino_ir.py (writers),
images.py, verify.py (running the artefact here), metadata.py (card and record in the file),
build.py (the pipeline), result.py (what it returns).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .result import (
    CheckReport,
    TargetBuildError,
    TargetResult,
    UnsupportedNode,
    Verification,
)
from .table import TARGETS, Artefact, Check, Target, get_target, target_names

if TYPE_CHECKING:
    from .build import build_for_target, default_output, sidecars
    from .metadata import TARGET_KEY, ArtefactMetadata, read_artefact_metadata

# Loaded on first use: importing the package (or its table) must not pay for onnx, onnxruntime's
# tools and quantization, which the pipeline needs.
_LAZY = {"build_for_target": "build", "default_output": "build", "sidecars": "build", "TARGET_KEY": "metadata",
         "ArtefactMetadata": "metadata", "read_artefact_metadata": "metadata"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TARGETS", "TARGET_KEY", "Artefact", "ArtefactMetadata", "Check", "CheckReport", "Target", "TargetBuildError",
    "TargetResult", "UnsupportedNode", "Verification", "build_for_target", "default_output", "get_target",
    "read_artefact_metadata", "sidecars", "target_names",
]
