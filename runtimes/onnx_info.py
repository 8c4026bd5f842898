"""What an ONNX file is: size, opset, inputs and outputs, and the card read or inferred — onnxruntime alone."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .card import ModelCard
from .inspection import Fact, TensorInfo
from .session import open_session


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    size_mb: float
    opset: dict[str, int]
    producer: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    card: ModelCard  # the file's own, or what was read from the graph and probed
    stored_card: bool
    facts: tuple[Fact, ...]
    static_batch: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_mb": round(self.size_mb, 3),
            "opset": self.opset,
            "producer": self.producer,
            "inputs": [i.describe() for i in self.inputs],
            "outputs": [o.describe() for o in self.outputs],
            "stored_card": self.stored_card,
            "static_batch": self.static_batch,
            "facts": [{"name": f.name, "value": list(f.value) if isinstance(f.value, tuple) else f.value,
                       "source": f.source} for f in self.facts],
            "card": self.card.to_dict() if self.stored_card else None,
            "resolved_card": self.card.to_dict(),
        }


def describe_model(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> ModelInfo:
    opened = open_session(path, "cpu", threads=1, overrides=overrides)
    meta = opened.session.get_modelmeta()
    opset, producer = _from_proto(opened.path)
    inspection = opened.inspection
    return ModelInfo(
        path=opened.path,
        size_mb=opened.path.stat().st_size / 1e6,
        opset=opset,
        producer=producer or meta.producer_name,
        inputs=inspection.inputs,
        outputs=inspection.outputs,
        card=opened.card,
        stored_card=inspection.stored,
        facts=inspection.facts,
        static_batch=inspection.static_batch,
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
