"""Loading and saving ONNX files for the graph transforms: typed errors, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from runtimes.errors import ExportError, ModelFileError
from runtimes.guards.fileio import atomic_path

from .graph_order import sort_topologically


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}" if not path.exists() else f"model path is not a file: {path}")
    try:
        return onnx.load(os.fspath(path))
    except Exception as exc:  # noqa: BLE001  (protobuf's DecodeError, onnx's own errors, ...)
        raise ModelFileError(f"{path}: cannot load as an ONNX model: {exc}") from None


def save_model(model: onnx.ModelProto, target: str | os.PathLike[str]) -> None:
    """Write `model` to `target` atomically, its nodes in the topological order the spec requires."""
    sort_topologically(model)  # a no-op on a sorted graph; graph transforms do not all keep the order
    with atomic_path(target, suffix=".onnx") as tmp:
        try:
            onnx.save(model, os.fspath(tmp))
        except ValueError as exc:  # protobuf refuses messages over 2 GB
            raise ExportError(f"cannot save {target}: {exc}") from None
