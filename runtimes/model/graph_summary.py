"""What an ONNX graph says about itself, read from the file's bytes (no `onnx` package needed).

For a model that comes without a segedge card, `runtimes.model.inspection` needs a few facts the
ONNX Runtime session does not expose: which node produces each graph output (a Sigmoid says
"probability", an ArgMax says "labels", a Softmax says "probabilities"), how many classes an
ArgMax chose among (the static channel size of its input, where the file records it), and how
far the graph downsamples its input (the product of the strides along its deepest path: an
upper bound of the size divisor the model needs).
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import onnx_wire as wire
from ..errors import ModelFileError

# Field numbers from onnx.proto3.
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 1, 11, 12, 13
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 3, 4, 5
_ATTR_NAME, _ATTR_INT, _ATTR_INTS = 1, 3, 8
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_ELEM_TYPE, _TENSOR_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2

# Ops whose `strides` shrink their output, and those whose `strides` grow it.
_DOWNSAMPLING = ("Conv", "MaxPool", "AveragePool", "LpPool", "QLinearConv", "ConvInteger")
_UPSAMPLING = ("ConvTranspose",)


@dataclass(frozen=True)
class Node:
    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    ints: dict[str, tuple[int, ...]] = field(default_factory=dict)  # integer attributes (strides, axis, ...)


@dataclass(frozen=True)
class GraphSummary:
    nodes: tuple[Node, ...]
    shapes: dict[str, tuple[int | str | None, ...]]  # value name -> dims (int, symbolic name, or None)

    def producer(self, tensor: str) -> Node | None:
        """The node that computes `tensor`, looking through Identity/Cast/Reshape-like pass-throughs."""
        by_output = {o: n for n in self.nodes for o in n.outputs}
        node = by_output.get(tensor)
        seen = 0
        while node is not None and node.op_type in ("Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape",
                                                    "Transpose") and seen < 16:
            node = by_output.get(node.inputs[0]) if node.inputs else None
            seen += 1
        return node

    def max_downsampling(self, source: str) -> int:
        """The largest product of strides on any path from `source` (1 when nothing downsamples)."""
        depth = {source: 1.0}
        for node in self.nodes:  # ONNX requires topological order
            reached = [depth[i] for i in node.inputs if i in depth]
            if not reached:
                continue
            d = max(reached)
            strides = node.ints.get("strides", ())
            if node.op_type in _DOWNSAMPLING and strides:
                d *= max(strides)
            elif node.op_type in _UPSAMPLING and strides:
                d /= max(strides)
            for out in node.outputs:
                depth[out] = d
        return max(1, int(max(depth.values())))


def read_graph_summary(path: str | os.PathLike[str]) -> GraphSummary:
    """The nodes and recorded value shapes of the ONNX file at `path` (its main graph only)."""
    path = Path(path)
    if path.suffix.lower() == ".ort":  # a flatbuffer, not protobuf: it tells nothing here beyond the session's view
        return GraphSummary((), {})
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            summary, error = _summary_or_error(data)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read {path}: {exc}") from None
    if error is not None:
        raise ModelFileError(f"{path}: not a valid ONNX file ({error})")
    assert summary is not None
    return summary


def _summary_or_error(data: mmap.mmap) -> tuple[GraphSummary | None, str | None]:
    # No exception (and its traceback holding slices of the map) may leave while the map is open.
    try:
        return _summary(memoryview(data)), None
    except wire.WireError as exc:
        return None, str(exc)


def _summary(buf: memoryview) -> GraphSummary:
    nodes: list[Node] = []
    shapes: dict[str, tuple[int | str | None, ...]] = {}
    for graph in wire.sub(wire.fields(buf), (_MODEL_GRAPH,)):
        for number, kind, value in wire.fields(graph):
            if kind != 2 or not isinstance(value, memoryview):
                continue
            if number == _GRAPH_NODE:
                nodes.append(_node(value))
            elif number in (_GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO):
                name, dims = _value_info(value)
                if dims is not None:
                    shapes[name] = dims
        break  # one main graph
    return GraphSummary(tuple(nodes), shapes)


def _node(buf: memoryview) -> Node:
    inputs, outputs, name, op_type = [], [], "", ""
    ints: dict[str, tuple[int, ...]] = {}
    for number, kind, value in wire.fields(buf):
        if number == _NODE_INPUT:
            inputs.append(wire.text(value))
        elif number == _NODE_OUTPUT:
            outputs.append(wire.text(value))
        elif number == _NODE_NAME:
            name = wire.text(value)
        elif number == _NODE_OP_TYPE:
            op_type = wire.text(value)
        elif number == _NODE_ATTRIBUTE and isinstance(value, memoryview):
            attr_name, attr_ints = _int_attribute(value)
            if attr_ints:
                ints[attr_name] = attr_ints
    return Node(op_type, name, tuple(inputs), tuple(outputs), ints)


def _int_attribute(buf: memoryview) -> tuple[str, tuple[int, ...]]:
    name, values = "", []
    for number, kind, value in wire.fields(buf):
        if number == _ATTR_NAME:
            name = wire.text(value)
        elif number == _ATTR_INT and kind == 0 and isinstance(value, int):
            values.append(_signed(value))
        elif number == _ATTR_INTS:
            if kind == 0 and isinstance(value, int):
                values.append(_signed(value))
            elif isinstance(value, memoryview):  # packed
                pos = 0
                while pos < len(value):
                    v, pos = wire.varint(value, pos)
                    values.append(_signed(v))
    return name, tuple(values)


def _value_info(buf: memoryview) -> tuple[str, tuple[int | str | None, ...] | None]:
    name, dims = "", None
    for number, _, value in wire.fields(buf):
        if number == _VALUE_NAME:
            name = wire.text(value)
        elif number == _VALUE_TYPE and isinstance(value, memoryview):
            for tensor in wire.sub(wire.fields(value), (_TYPE_TENSOR,)):
                for shape in wire.sub(wire.fields(tensor), (_TENSOR_SHAPE,)):
                    dims = tuple(_dim(d) for d in wire.sub(wire.fields(shape), (_SHAPE_DIM,)))
    return name, dims


def _dim(buf: memoryview) -> int | str | None:
    for number, kind, value in wire.fields(buf):
        if number == _DIM_VALUE and kind == 0 and isinstance(value, int):
            return _signed(value)
        if number == _DIM_PARAM:
            return wire.text(value)
    return None


def _signed(value: int) -> int:
    """Protobuf int64 fields hold negative numbers as 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value
