"""OpenVINO IR: the writer (`openvino.convert_model` + `save_model`), its check, running it, reading it.

The card travels in the IR's `rt_info` under `segedge` (`<rt_info><segedge><card value=".."/>`),
as JSON strings, next to the target record; read them back with

    core.read_model("model.xml").get_rt_info(["segedge", "card"]).astype(str)

(`read_ir_metadata` below does that). The check asks OpenVINO itself: its ONNX frontend's
`convert_partially` leaves every node it has no conversion rule for as an `ONNXFrameworkNode`
(and ones it failed on as `NotSupportedONNXNode`), and `core.query_model` names the operations a
device's plugin can take, for every device present on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from runtimes.errors import ExportError, ProviderError

from .node_names import node_label, op_label
from .quiet import quiet
from .result import CheckReport, UnsupportedNode
from .table import Check

RT_INFO_KEY = "segedge"
_UNCONVERTED = {
    "ONNXFrameworkNode": "no conversion rule in OpenVINO's ONNX frontend",
    "NotSupportedONNXNode": "OpenVINO's ONNX frontend failed to convert it (often: an input comes from an "
                            "unconverted node)",
}


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise ProviderError("OpenVINO is not installed: pip install 'segedge[openvino]'") from None
    return openvino


def check_openvino(model_path: Path) -> CheckReport:
    ov = import_openvino()
    graph = onnx.load(os.fspath(model_path), load_external_data=False).graph
    frontend = ov.frontend.FrontEndManager().load_by_framework("onnx")
    with quiet():
        partial = frontend.convert_partially(frontend.load(os.fspath(model_path)))
    runtime = f"OpenVINO {ov.__version__}"
    source = "OpenVINO ONNX frontend (convert_partially)"
    rows = _unconverted(partial, graph)
    if rows:
        # query_model on a partly converted model aborts inside the plugin (std::bad_alloc, measured).
        return CheckReport(Check.openvino_devices.value, runtime, source, ran=True, nodes=len(graph.node),
                           supported=len(graph.node) - len(rows), unsupported=tuple(rows), fallback=None,
                           note="devices not queried: the model does not convert")
    core = ov.Core()
    devices = tuple(core.available_devices)
    rows = []
    for device in devices:
        taken = set(core.query_model(partial, device))
        rows += [UnsupportedNode(op.get_type_name(), op.get_friendly_name(), f"the {device} plugin cannot run it",
                                 Check.openvino_devices.value)
                 for op in partial.get_ordered_ops() if op.get_friendly_name() not in taken]
    # Plugin rows name OpenVINO operations, which need not map one-to-one onto ONNX nodes.
    return CheckReport(Check.openvino_devices.value, f"{runtime} ({', '.join(devices)})",
                       f"{source} + core.query_model", ran=True, nodes=len(graph.node),
                       supported=max(len(graph.node) - len(rows), 0), unsupported=tuple(rows), fallback=None,
                       note=f"devices queried: {', '.join(devices)}")


def _unconverted(partial: Any, graph: onnx.GraphProto) -> list[UnsupportedNode]:
    # Friendly names are the ONNX node's name, or its output's name for an unnamed node.
    by_name = {node.name: node for node in graph.node if node.name}
    by_output = {out: node for node in graph.node for out in node.output}
    rows = []
    for op in partial.get_ordered_ops():
        reason = _UNCONVERTED.get(op.get_type_name())
        if reason is None:
            continue
        name = op.get_friendly_name()
        node = by_name.get(name) or by_output.get(name)
        rows.append(UnsupportedNode(op_label(node) if node else "?", node_label(node) if node else name, reason,
                                    Check.openvino_devices.value))
    return rows


def write_ir(onnx_path: Path, xml: Path, *, compress_to_fp16: bool, rt_info: dict[str, str]) -> tuple[Path, Path]:
    """Convert the ONNX file to IR at `xml` (+ its `.bin`), with `rt_info` under `segedge`."""
    ov = import_openvino()
    try:
        with quiet():
            model = ov.convert_model(os.fspath(onnx_path))
    except Exception as exc:  # OpConversionFailure and friends: the check above names the nodes
        raise ExportError(f"OpenVINO cannot convert the model: {_ov_summary(exc)}") from exc
    for key, value in rt_info.items():
        model.set_rt_info(value, [RT_INFO_KEY, key])
    ov.save_model(model, os.fspath(xml), compress_to_fp16=compress_to_fp16)
    return xml, xml.with_suffix(".bin")


def read_ir_metadata(xml: str | os.PathLike[str]) -> dict[str, str]:
    """The `segedge` entries of an IR's rt_info ({"card": json, "target": json}; empty when absent)."""
    ov = import_openvino()
    model = ov.Core().read_model(os.fspath(xml))
    out = {}
    for key in ("card", "target"):
        if model.has_rt_info([RT_INFO_KEY, key]):
            out[key] = model.get_rt_info([RT_INFO_KEY, key]).astype(str)
    return out


def ir_runner(xml: Path, threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Compile the IR for OpenVINO's CPU plugin in f32 (the precision it would choose is a device question)."""
    ov = import_openvino()
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = ov.Core().compile_model(os.fspath(xml), "CPU", config)
    request = compiled.create_infer_request()

    def run(batch: np.ndarray) -> np.ndarray:
        request.infer({0: batch})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)

    return run



def _ov_summary(exc: BaseException) -> str:
    """OpenVINO's message starts with the C++ assertion; its last lines say what failed."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Check ", "Exception from", "FrontEnd API failed"))]
    return " ".join(useful[-2:]) if useful else (lines[-1] if lines else type(exc).__name__)
