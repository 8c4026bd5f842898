"""The layers a sensitivity ranking and a repair move between precisions: units of an ONNX graph.

A unit is named by one weighted node (Conv, ConvTranspose, Gemm, a MatMul with a constant operand)
and holds the nodes that must stay in higher precision for that node's result to stay there: the
node, the nodes its result flows through up to the next weighted nodes, and those. In a QDQ graph
every quantized node quantizes its inputs, so keeping a Conv alone in float leaves its output
quantized for its consumer: the activation with the outliers would still be rounded.

A graph with more units than a ranking can afford is grouped into blocks: runs of consecutive units
in graph order (what Polygraphy's `debug precision` and NNCF's accuracy control also do, by
bisection or by groups of quantizers), so that the cost stays a stated number of model runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import onnx

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class Unit:
    name: str  # the weighted node it is named by (a block: "first .. last")
    nodes: tuple[str, ...]  # every node kept in higher precision with it
    layers: tuple[str, ...]  # the weighted nodes it holds (one, or a block's)

    def to_dict(self) -> dict:
        return {"name": self.name, "layers": list(self.layers), "nodes": list(self.nodes)}


def weighted_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Conv/ConvTranspose/Gemm, and MatMuls with a constant operand, in graph order."""
    constants = {i.name for i in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n for n in model.graph.node if n.name and (
        n.op_type in ("Conv", "ConvTranspose", "Gemm")
        or (n.op_type == "MatMul" and any(i in constants for i in n.input)))]


def units(model: onnx.ModelProto) -> list[Unit]:
    """One unit per weighted node of an ONNX graph, in graph order."""
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
    following = {n.name: [c for o in n.output for c in consumers.get(o, [])] for n in model.graph.node}
    return units_of([n.name for n in weighted_nodes(model)], following)


def units_of(weighted: list[str], following: dict[str, list[str]]) -> list[Unit]:
    """Units of any graph: `weighted` node names in graph order, `following[name]` the nodes reading its results."""
    names = set(weighted)
    found = []
    for name in weighted:
        kept, pending, seen = [name], list(following.get(name, [])), {name}
        while pending:
            consumer = pending.pop()
            if not consumer or consumer in seen:
                continue
            seen.add(consumer)
            kept.append(consumer)
            if consumer not in names:  # flows on through Relu, Add, Resize... to the next weighted nodes
                pending += following.get(consumer, [])
        found.append(Unit(name, tuple(kept), (name,)))
    return found


def blocks(found: Sequence[Unit], most: int) -> list[Unit]:
    """`found` as at most `most` units: consecutive ones merged into blocks of (nearly) equal size."""
    if len(found) <= most:
        return list(found)
    size, extra = divmod(len(found), most)
    merged, start = [], 0
    for i in range(most):
        part = found[start:start + size + (1 if i < extra else 0)]
        start += len(part)
        nodes = tuple(dict.fromkeys(n for u in part for n in u.nodes))
        layers = tuple(layer for u in part for layer in u.layers)
        merged.append(Unit(f"{part[0].name} .. {part[-1].name}" if len(part) > 1 else part[0].name, nodes, layers))
    return merged
