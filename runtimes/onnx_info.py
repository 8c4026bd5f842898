"""What an ONNX file is: size, opset, inputs and outputs — read with onnxruntime alone."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .card import ModelCard
from .session import open_session


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    size_mb: float
    opset: dict[str, int]
    producer: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    card: ModelCard | None


def _describe_value(value) -> str:
    shape = "x".join(str(d) if d is not None else "?" for d in value.shape)
    return f"{value.name}: {value.type} [{shape}]"


def describe_model(path: str | os.PathLike[str]) -> ModelInfo:
    opened = open_session(path, "cpu", threads=1)
    session = opened.session
    meta = session.get_modelmeta()
    opset, producer = _from_proto(opened.path)
    return ModelInfo(
        path=opened.path,
        size_mb=opened.path.stat().st_size / 1e6,
        opset=opset,
        producer=producer or meta.producer_name,
        inputs=tuple(_describe_value(v) for v in session.get_inputs()),
        outputs=tuple(_describe_value(v) for v in session.get_outputs()),
        card=opened.card,
    )


def _from_proto(path: Path) -> tuple[dict[str, int], str]:
    """Opset imports and "producer version", read from the file when onnx is installed (the runtime
    install lacks it; ONNX Runtime's metadata has the producer's name only)."""
    try:
        import onnx
    except ImportError:
        return {}, ""
    model = onnx.load(str(path), load_external_data=False)
    opsets = {imp.domain or "ai.onnx": imp.version for imp in model.opset_import}
    return opsets, f"{model.producer_name} {model.producer_version}".strip()
