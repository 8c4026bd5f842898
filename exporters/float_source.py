"""The fp32 graph a quantizer needs, from files as other projects ship them.

- Opset below 13 (PaddlePaddle's converter at 11-12, older mmdeploy): per-channel DequantizeLinear
  (its `axis`) needs opset 13, so ONNX Runtime's quantizer writes an invalid file. `upgrade_opset`
  runs onnx's own version converter; the caller checks the upgraded file against the original.
- fp16 inside (onnxconverter-common's `keep_io_types=True`, a `model.half()` export fed float
  inputs): the quantizers insert QuantizeLinear on fp16 tensors, which ONNX refuses. No library
  converts fp16 back to fp32, so `fp32_from_fp16` does the few things it takes: fp16 weights,
  constants and value types become fp32, the Casts into fp16 become Casts into fp32, and every
  Cast that then turns a float into a float (all of the converter's) is removed.
- An already quantized file (QDQ, QOperator, dynamic) is not quantized again: its scheme is named
  by `runtimes.model.precision.read_precision`, and `model_precision` reads it from an onnx ModelProto.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper, version_converter

from runtimes.errors import ExportError
from runtimes.model.precision import GraphPrecision, read_precision
from runtimes.backends.messages import runtime_reason

PER_CHANNEL_OPSET = 13  # DequantizeLinear's `axis` (per-channel weights) appeared in opset 13


def onnx_opset(model: onnx.ModelProto) -> int:
    return next((int(imp.version) for imp in model.opset_import if imp.domain in ("", "ai.onnx")), 0)


def upgrade_opset(model: onnx.ModelProto, version: int = PER_CHANNEL_OPSET) -> onnx.ModelProto:
    """`model` converted to `version` by onnx's version converter (its metadata kept)."""
    try:
        upgraded = version_converter.convert_version(model, version)
    except Exception as exc:  # noqa: BLE001 - the converter raises RuntimeError and its own C++ errors
        raise ExportError(f"onnx's version converter cannot bring opset {onnx_opset(model)} to {version}: "
                          f"{runtime_reason(exc)}; export the model at opset {version} or later") from None
    del upgraded.metadata_props[:]
    upgraded.metadata_props.extend(model.metadata_props)
    return upgraded


def model_precision(model: onnx.ModelProto) -> GraphPrecision:
    """What an onnx ModelProto computes in (`runtimes.model.precision.read_precision` on its nodes)."""
    def ints(node: onnx.NodeProto) -> dict[str, tuple[int, ...]]:
        return {a.name: ((a.i,) if a.type == onnx.AttributeProto.INT else tuple(a.ints)) for a in node.attribute}

    initializers = {i.name for i in model.graph.initializer}
    image = next(i for i in model.graph.input if i.name not in initializers)
    return read_precision(((n.op_type, ints(n)) for n in model.graph.node), tensor_type(image.type),
                          [tensor_type(o.type) for o in model.graph.output])


def fp32_from_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` computing in fp32: no fp16 tensor left, no Cast between two float types."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for tensor in graph.initializer:
        _to_fp32(tensor)
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    for node in graph.node:
        if any(a.g.node or a.graphs for a in node.attribute):
            raise ExportError(f"fp16 -> fp32: node {node.name or node.op_type} holds a subgraph ({node.op_type}); "
                              "convert the fp32 original instead")
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                _to_fp32(attribute.t)
            elif node.op_type in ("Cast", "CastLike") and attribute.name == "to" and attribute.i == TensorProto.FLOAT16:
                attribute.i = TensorProto.FLOAT
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - onnx's inference raises its own errors
        raise ExportError(f"fp16 -> fp32: onnx's shape inference failed: {runtime_reason(exc)}") from None
    types = {v.name: v.type.tensor_type.elem_type for v in (*inferred.graph.input, *inferred.graph.value_info,
                                                               *inferred.graph.output)}
    types.update({i.name: i.data_type for i in graph.initializer})
    _drop_float_casts(graph, types)
    del graph.value_info[:]  # stale where a Cast was removed; ORT infers them again
    return model


def _drop_float_casts(graph: onnx.GraphProto, types: dict[str, int]) -> None:
    """Remove each Cast from a float to a float (the converter's, now fp32 -> fp32); its readers read its input."""
    outputs = {o.name for o in graph.output}
    renamed: dict[str, str] = {}
    kept = []
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if node.op_type == "Cast" and to == TensorProto.FLOAT and types.get(node.input[0]) == TensorProto.FLOAT:
            if node.output[0] in outputs:  # a graph output keeps its name: an Identity does that for free
                kept.append(onnx.helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name))
            else:
                renamed[node.output[0]] = node.input[0]
            continue
        kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)


def _to_fp32(tensor: onnx.TensorProto) -> None:
    if tensor.data_type == TensorProto.FLOAT16:
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))


def tensor_type(value_type: onnx.TypeProto) -> str:
    """ONNX Runtime's spelling of a value's element type ("tensor(float)"), for the types a model's image input takes."""
    names: dict[int, str] = {TensorProto.FLOAT: "tensor(float)", TensorProto.FLOAT16: "tensor(float16)",
                             TensorProto.UINT8: "tensor(uint8)"}
    return names.get(int(value_type.tensor_type.elem_type), "tensor(other)")
