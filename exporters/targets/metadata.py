"""What travels inside every artefact: the model card and the target record, and reading them back.

Both are JSON strings: in an .onnx or .ort file under `metadata_props` keys `segedge.card`
(`runtimes.model.card.CARD_KEY`) and `segedge.target`; in an OpenVINO IR under `rt_info` ->
`segedge` -> `card` / `target`. The target record says for which target the file was made, its
input shape (static or which axes are dynamic), opset, precision and what the checks found, so
`segedge info` can answer from any artefact. Reading needs onnxruntime (and openvino for IR)
only, no onnx or torch: `read_artefact_metadata` can move to `runtimes` as it is.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from runtimes.model.card import CARD_KEY, TARGET_KEY, ModelCard
from runtimes.errors import ModelFileError

from .result import CheckReport
from .table import Target

RECORD_VERSION = 1


@dataclass(frozen=True)
class ArtefactMetadata:
    card: ModelCard | None
    target: dict[str, Any] | None  # the target record, None for files segedge did not make for a target

    def shape_constraints(self) -> str:
        """One line for `segedge info`: what input the file takes."""
        if self.target is None:
            return "not made for a target (see the input shape)"
        shape = self.target["input"]["shape"]
        if self.target["input"]["static"]:
            return f"static input {'x'.join(map(str, shape))} only (batch 1): resize or tile images to it"
        divisor = self.card.size_divisor if self.card else 1
        rule = f", H and W padded to multiples of {divisor}" if divisor > 1 else ""
        return f"dynamic input {'x'.join(map(str, shape))}{rule}"


def target_record(target: Target, model: onnx.ModelProto, *, precision: str, checks: tuple[CheckReport, ...],
                  calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    image = model.graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in image.type.tensor_type.shape.dim]
    return {
        "record_version": RECORD_VERSION,
        "target": target.name,
        "runtime": target.runtime,
        "artefact": target.artefact.value,
        "input": {"name": image.name, "shape": dims, "static": all(isinstance(d, int) and d > 0 for d in dims)},
        "opset": next((int(i.version) for i in model.opset_import if i.domain in ("", "ai.onnx")), None),
        "precision": precision,
        "activations": (calibration or {}).get("activations"),
        "weights": (calibration or {}).get("weights"),
        "checks": [_check_summary(c) for c in checks],
        "not_built": list(target.not_built),
        "onnxruntime": ort.__version__,
        "openvino": _version("openvino") if target.artefact.value == "openvino_ir" else None,
    }


def embed(model: onnx.ModelProto, card: ModelCard | None, record: dict[str, Any]) -> onnx.ModelProto:
    """Set the card (when there is one) and the target record in `model.metadata_props`, in place."""
    entries = {CARD_KEY: card.to_json()} if card is not None else {}
    entries[TARGET_KEY] = to_json(record)
    kept = [p for p in model.metadata_props if p.key not in (CARD_KEY, TARGET_KEY)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    return model


def read_artefact_metadata(path: str | os.PathLike[str]) -> ArtefactMetadata:
    """The card and target record of an .onnx, .ort or OpenVINO .xml file."""
    path = Path(path)
    if path.suffix.lower() == ".xml":
        from .openvino_ir import read_ir_metadata

        entries = read_ir_metadata(path)
        card_text, record_text = entries.get("card"), entries.get("target")
    else:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own exception types per failure kind)
            raise ModelFileError(f"{path}: cannot load: {str(exc).strip().splitlines()[0]}") from None
        meta = session.get_modelmeta().custom_metadata_map
        card_text, record_text = meta.get(CARD_KEY), meta.get(TARGET_KEY)
    return ArtefactMetadata(
        card=ModelCard.from_json(card_text) if card_text else None,
        target=json.loads(record_text) if record_text else None,
    )


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _check_summary(report: CheckReport) -> dict[str, Any]:
    return {
        "check": report.check, "ran": report.ran, "nodes": report.nodes, "supported": report.supported,
        "falling_back": report.falling_back, "partitions": report.partitions,
        "unsupported_ops": sorted({row.op_type for row in report.unsupported}),
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
