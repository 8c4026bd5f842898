"""Checking an ONNX file's external-data references before anything loads them.

ONNX had path-traversal CVEs in external-data loading through 1.20, and runtimes older than ours
follow `../` and absolute paths. This reads the protobuf wire format directly (the runtime install
has no `onnx` package), finds every tensor stored outside the file, and requires each location to
stay inside the model's folder — after resolving symlinks — and to be long enough.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelFileError
from . import onnx_wire as wire
from .onnx_wire import WireError, sub

# Field numbers from onnx.proto3.
_MODEL_GRAPH, _MODEL_TRAINING_INFO, _MODEL_FUNCTIONS = 7, 20, 25
_TRAINING_GRAPHS = (1, 2)
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_FUNCTION_NODE = 7
_NODE_ATTRIBUTE = 5
_ATTR_TENSOR, _ATTR_GRAPH, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1
_MAX_DEPTH = 64


@dataclass(frozen=True)
class ExternalRef:
    tensor: str
    location: str
    offset: int
    length: int | None


def external_refs(data) -> list[ExternalRef]:
    """Every external-data reference in a serialised ModelProto."""
    refs: list[ExternalRef] = []

    def tensor(buf: memoryview) -> None:
        fields = list(wire.fields(buf))
        location_kind = next((v for n, w, v in fields if n == _TENSOR_DATA_LOCATION and w == 0), 0)
        entries = {}
        for entry in sub(fields, (_TENSOR_EXTERNAL_DATA,)):
            kv = {n: bytes(v).decode("utf-8", "replace") for n, w, v in wire.fields(entry) if w == 2}
            entries[kv.get(1, "")] = kv.get(2, "")
        if location_kind == _EXTERNAL or entries:
            name = next((bytes(v).decode("utf-8", "replace") for n, w, v in fields if n == _TENSOR_NAME and w == 2), "?")
            try:
                offset = int(entries.get("offset", 0) or 0)
                length = int(entries["length"]) if entries.get("length") else None
            except ValueError:
                raise WireError(f"tensor {name!r} has a non-numeric external offset or length") from None
            refs.append(ExternalRef(name, entries.get("location", ""), offset, length))

    def sparse(buf: memoryview) -> None:
        for t in sub(list(wire.fields(buf)), (_SPARSE_VALUES, _SPARSE_INDICES)):
            tensor(t)

    def graph(buf: memoryview, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise WireError("graphs nested too deep")
        fields = list(wire.fields(buf))
        for t in sub(fields, (_GRAPH_INITIALIZER,)):
            tensor(t)
        for s in sub(fields, (_GRAPH_SPARSE_INITIALIZER,)):
            sparse(s)
        for node in sub(fields, (_GRAPH_NODE,)):
            node_attributes(node, depth)

    def node_attributes(node: memoryview, depth: int) -> None:
        for attr in sub(list(wire.fields(node)), (_NODE_ATTRIBUTE,)):
            attr_fields = list(wire.fields(attr))
            for t in sub(attr_fields, (_ATTR_TENSOR, _ATTR_TENSORS)):
                tensor(t)
            for s in sub(attr_fields, (_ATTR_SPARSE, _ATTR_SPARSES)):
                sparse(s)
            for g in sub(attr_fields, (_ATTR_GRAPH, _ATTR_GRAPHS)):
                graph(g, depth + 1)

    try:
        model = list(wire.fields(memoryview(data)))
        for g in sub(model, (_MODEL_GRAPH,)):
            graph(g, 0)
        for info in sub(model, (_MODEL_TRAINING_INFO,)):
            for g in sub(list(wire.fields(info)), _TRAINING_GRAPHS):
                graph(g, 0)
        for function in sub(model, (_MODEL_FUNCTIONS,)):
            for node in sub(list(wire.fields(function)), (_FUNCTION_NODE,)):
                node_attributes(node, 0)
    except WireError as exc:
        raise ModelFileError(f"not a valid ONNX file ({exc})") from None
    return refs


def _refs_or_error(data) -> tuple[list[ExternalRef], str | None]:
    # The error leaves as text: a live traceback would keep slices of the memory map exported
    # and make closing the map fail.
    try:
        return external_refs(data), None
    except ModelFileError as exc:
        return [], str(exc)


def check_external_data(path: str | os.PathLike[str]) -> list[ExternalRef]:
    """Raise `ModelFileError` unless every external-data reference of `path` is safe and complete."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            if path.stat().st_size == 0:
                raise ModelFileError(f"{path}: the file is empty")
            # mmap: the weights (most of the file) are skipped over, never copied.
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                refs, error = _refs_or_error(data)
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if error is not None:
        raise ModelFileError(f"{path}: {error}")
    folder = path.resolve().parent
    for ref in refs:
        where = f"{path}: external data of tensor {ref.tensor!r}"
        location = Path(ref.location)
        if not ref.location or location.is_absolute() or ".." in location.parts or "\\" in ref.location:
            raise ModelFileError(f"{where} points outside the model's folder ({ref.location!r})")
        target = (folder / location).resolve()
        if folder not in target.parents:
            raise ModelFileError(f"{where} resolves outside the model's folder ({ref.location!r} -> {target})")
        if not target.is_file():
            raise ModelFileError(f"{where} is missing: {ref.location!r} not found beside the model")
        if ref.offset < 0 or (ref.length is not None and ref.length < 0):
            raise ModelFileError(f"{where} has a negative offset or length")
        size = target.stat().st_size
        if ref.offset + (ref.length or 0) > size:
            raise ModelFileError(
                f"{where} is shorter than declared: {ref.location!r} has {size} bytes, "
                f"needs {ref.offset + (ref.length or 0)}"
            )
    return refs
