"""Checking an ONNX file's external-data references before anything loads them.

ONNX had path-traversal CVEs in external-data loading through 1.20, and runtimes older than ours
follow `../` and absolute paths. This reads the protobuf wire format directly (the runtime install
has no `onnx` package), finds every tensor stored outside the file, and requires each location to
stay inside the model's folder — after resolving symlinks — and to be long enough.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFileError

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


class _WireError(ValueError):
    pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value) for one message; value is int or memoryview."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise _WireError("field runs past the end of the message")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise _WireError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise _WireError("truncated field")
        yield number, wire, value


def _sub(fields, numbers: tuple[int, ...]):
    return (v for n, w, v in fields if n in numbers and w == 2)


def external_refs(data) -> list[ExternalRef]:
    """Every external-data reference in a serialised ModelProto."""
    refs: list[ExternalRef] = []

    def tensor(buf: memoryview) -> None:
        fields = list(_fields(buf))
        location_kind = next((v for n, w, v in fields if n == _TENSOR_DATA_LOCATION and w == 0), 0)
        entries = {}
        for entry in _sub(fields, (_TENSOR_EXTERNAL_DATA,)):
            kv = {n: bytes(v).decode("utf-8", "replace") for n, w, v in _fields(entry) if w == 2}
            entries[kv.get(1, "")] = kv.get(2, "")
        if location_kind == _EXTERNAL or entries:
            name = next((bytes(v).decode("utf-8", "replace") for n, w, v in fields if n == _TENSOR_NAME and w == 2), "?")
            try:
                offset = int(entries.get("offset", 0) or 0)
                length = int(entries["length"]) if entries.get("length") else None
            except ValueError:
                raise _WireError(f"tensor {name!r} has a non-numeric external offset or length") from None
            refs.append(ExternalRef(name, entries.get("location", ""), offset, length))

    def sparse(buf: memoryview) -> None:
        for t in _sub(list(_fields(buf)), (_SPARSE_VALUES, _SPARSE_INDICES)):
            tensor(t)

    def graph(buf: memoryview, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _WireError("graphs nested too deep")
        fields = list(_fields(buf))
        for t in _sub(fields, (_GRAPH_INITIALIZER,)):
            tensor(t)
        for s in _sub(fields, (_GRAPH_SPARSE_INITIALIZER,)):
            sparse(s)
        for node in _sub(fields, (_GRAPH_NODE,)):
            node_attributes(node, depth)

    def node_attributes(node: memoryview, depth: int) -> None:
        for attr in _sub(list(_fields(node)), (_NODE_ATTRIBUTE,)):
            attr_fields = list(_fields(attr))
            for t in _sub(attr_fields, (_ATTR_TENSOR, _ATTR_TENSORS)):
                tensor(t)
            for s in _sub(attr_fields, (_ATTR_SPARSE, _ATTR_SPARSES)):
                sparse(s)
            for g in _sub(attr_fields, (_ATTR_GRAPH, _ATTR_GRAPHS)):
                graph(g, depth + 1)

    try:
        model = list(_fields(memoryview(data)))
        for g in _sub(model, (_MODEL_GRAPH,)):
            graph(g, 0)
        for info in _sub(model, (_MODEL_TRAINING_INFO,)):
            for g in _sub(list(_fields(info)), _TRAINING_GRAPHS):
                graph(g, 0)
        for function in _sub(model, (_MODEL_FUNCTIONS,)):
            for node in _sub(list(_fields(function)), (_FUNCTION_NODE,)):
                node_attributes(node, 0)
    except _WireError as exc:
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
