"""What an ONNX file is: size, opset, inputs and outputs, and the card read or inferred — onnxruntime alone."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .card import ModelCard
from .inspection import Fact, TensorInfo
from ..backends.selection import Runtime, is_ir, open_model


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    format: str  # "ONNX", "ORT format" or "OpenVINO IR"
    size_mb: float
    opset: dict[str, int]  # empty where the file is not protobuf ONNX (or onnx is not installed)
    producer: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    card: ModelCard  # the file's own, or what was read from the graph and probed
    stored_card: bool
    facts: tuple[Fact, ...]
    static_batch: int | None
    runs_on: str  # the runtime and what it really runs
    target: dict[str, Any] | None  # the edge-target record, for files `segedge export --target` made
    shape_constraints: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "size_mb": round(self.size_mb, 3),
            "opset": self.opset,
            "producer": self.producer,
            "inputs": [i.describe() for i in self.inputs],
            "outputs": [o.describe() for o in self.outputs],
            "stored_card": self.stored_card,
            "static_batch": self.static_batch,
            "runs_on": self.runs_on,
            "target": self.target,
            "shape_constraints": self.shape_constraints,
            "facts": [{"name": f.name, "value": list(f.value) if isinstance(f.value, tuple) else f.value,
                       "source": f.source} for f in self.facts],
            "card": self.card.to_dict() if self.stored_card else None,
            "resolved_card": self.card.to_dict(),
        }


def describe_model(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None,
                   runtime: Runtime | str | None = None) -> ModelInfo:
    """What `path` is: .onnx, .ort, or an OpenVINO IR .xml (`runtime` None: the file's own runtime)."""
    opened = open_model(path, runtime, "cpu", 1, overrides=overrides)
    session = getattr(opened, "session", None)  # ONNX Runtime's own, for its metadata
    opset, producer = _from_proto(opened.path)
    inspection = opened.inspection
    return ModelInfo(
        path=opened.path,
        format=file_format(opened.path),
        size_mb=sum(p.stat().st_size for p in model_files(opened.path)) / 1e6,
        opset=opset,
        producer=producer or (session.get_modelmeta().producer_name if session is not None else ""),
        inputs=inspection.inputs,
        outputs=inspection.outputs,
        card=opened.card,
        stored_card=inspection.stored,
        facts=inspection.facts,
        static_batch=inspection.static_batch,
        runs_on=", ".join(opened.active_providers),
        target=inspection.target,
        shape_constraints=inspection.shape_constraints(),
    )


def file_format(path: Path) -> str:
    return "OpenVINO IR" if is_ir(path) else "ORT format" if path.suffix.lower() == ".ort" else "ONNX"


def model_megabytes(path: Path) -> float:
    """What the model weighs on disk in MiB, every file of it (an IR's .bin too)."""
    return sum(p.stat().st_size for p in model_files(path)) / 2**20


def model_files(path: Path) -> list[Path]:
    """The model's files: an IR is its .xml and the .bin beside it."""
    return [path, path.with_suffix(".bin")] if is_ir(path) and path.with_suffix(".bin").is_file() else [path]


def _from_proto(path: Path) -> tuple[dict[str, int], str]:
    """Opset imports and "producer version", read from the file when onnx is installed (the runtime
    install lacks it; ONNX Runtime's metadata has the producer's name only)."""
    try:
        import onnx
    except ImportError:
        return {}, ""
    if path.suffix.lower() not in (".onnx", ""):
        return {}, ""  # ORT format and IR: not protobuf ONNX
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - onnxruntime opened it; whatever onnx thinks, there is just less to say
        return {}, ""
    opsets = {imp.domain or "ai.onnx": imp.version for imp in model.opset_import}
    return opsets, f"{model.producer_name} {model.producer_version}".strip()
