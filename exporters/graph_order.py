"""Nodes in topological order, as the ONNX spec requires and `onnx.checker` enforces.

ONNX Runtime's float16 converter appends the Cast nodes it inserts for float32 inputs at the end
of the graph, after the nodes that read them: ONNX Runtime sorts graphs itself and loads such a
file, but `onnx.checker.check_model` refuses it ("Nodes in a graph must be topologically
sorted") and so may other runtimes and tools. `sort_topologically` reorders the nodes, keeping
the original order wherever it is already valid, so a sorted graph comes back unchanged.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable

import onnx

from runtimes.errors import ExportError


def sort_topologically(model: onnx.ModelProto) -> onnx.ModelProto:
    """Sort `model`'s graph (and its subgraphs) in place; returns `model`."""
    _sort(model.graph, outer=set())
    return model


def _sort(graph: onnx.GraphProto, outer: set[str]) -> None:
    known = outer | {i.name for i in graph.input} | {t.name for t in graph.initializer}
    known |= {t.name for t in graph.sparse_initializer} | {""}  # "": an omitted optional input
    nodes = list(graph.node)
    waiting_on: list[set[str]] = []
    readers: defaultdict[str, list[int]] = defaultdict(list)
    for index, node in enumerate(nodes):
        needs = {name for name in _reads(node) if name not in known}
        waiting_on.append(needs)
        for name in needs:
            readers[name].append(index)
    ready = [index for index, needs in enumerate(waiting_on) if not needs]
    heapq.heapify(ready)  # lowest original index first: the given order wherever it is valid
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for name in nodes[index].output:
            for reader in readers.pop(name, ()):
                waiting_on[reader].discard(name)
                if not waiting_on[reader]:
                    heapq.heappush(ready, reader)
    if len(order) != len(nodes):
        placed = set(order)
        first = next(i for i in range(len(nodes)) if i not in placed)
        stuck, missing = nodes[first], sorted(waiting_on[first])
        raise ExportError(f"graph {graph.name!r} cannot be ordered: node {stuck.name or stuck.op_type!r} reads "
                          f"{', '.join(missing[:3])}, which no node, input or initializer provides (or a cycle)")
    if order != list(range(len(nodes))):
        del graph.node[:]
        graph.node.extend(nodes[i] for i in order)
    produced = set(known)
    for node in graph.node:
        for subgraph in _subgraphs(node):
            _sort(subgraph, produced)
        produced.update(node.output)


def _reads(node: onnx.NodeProto) -> Iterable[str]:
    """The node's inputs and the outer-scope names its subgraphs (If, Loop, Scan) read."""
    yield from node.input
    for subgraph in _subgraphs(node):
        yield from _outer_names(subgraph)


def _outer_names(graph: onnx.GraphProto) -> set[str]:
    inside = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    used: set[str] = set()
    for node in graph.node:
        used.update(name for name in _reads(node) if name not in inside)
        inside.update(node.output)
    return used - inside


def _subgraphs(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.GRAPH:
            yield attribute.g
        elif attribute.type == onnx.AttributeProto.GRAPHS:
            yield from attribute.graphs
