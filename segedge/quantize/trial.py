"""One quantized candidate as `quantize --precision auto` measured it (ONNX Runtime's search and OpenVINO's alike)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtimes.measure.parity import Parity
from runtimes.model.precision import Precision


@dataclass(frozen=True)
class Trial:
    precision: Precision
    excluded: tuple[str, ...]
    path: Path
    agreement: Parity
    lost_points: float
    within_budget: bool
    size_mb: float
    p50_ms: float = float("nan")
    step: str = ""  # the repair step that made it ("calibration: entropy", "2 layers in float")
    config: dict | None = None  # the repair's candidate: method, weights, the layers kept in float

    @property
    def label(self) -> str:
        if self.step:
            return f"{self.precision}, repaired ({self.step})"
        return f"{self.precision} ({len(self.excluded)} nodes float)" if self.excluded else self.precision.value

    def to_dict(self) -> dict:
        a = self.agreement
        return {"precision": self.precision.value, "excluded_nodes": list(self.excluded), "lost_points": self.lost_points,
                "within_budget": self.within_budget, "argmax_agreement": a.argmax_agreement, "miou": a.miou,
                "p50_ms": self.p50_ms, "size_mb": round(self.size_mb, 3),
                **({"repair_step": self.step, "repair": self.config} if self.step else {})}
