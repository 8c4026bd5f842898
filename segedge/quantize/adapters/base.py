"""What the sensitivity ranking and the repair search ask of a runtime's quantizer (see the package)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from segedge.quantize.layers import Unit

RunBatch = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """One quantized variant: how activations are calibrated, how weights are quantized, what stays higher."""

    method: str  # calibration: minmax, percentile, entropy (or the backend's own names)
    weights: str  # the backend's weight scheme: per-channel, per-tensor, uint8, int8 ...
    kept: tuple[str, ...] = ()  # nodes kept in the backend's higher precision
    kept_layers: tuple[str, ...] = ()  # the units (layers or blocks) those nodes came from, by name

    def keeping(self, chosen: tuple[Unit, ...]) -> Candidate:
        nodes = tuple(dict.fromkeys(n for u in chosen for n in u.nodes))
        return replace(self, kept=nodes, kept_layers=tuple(u.name for u in chosen))

    def to_dict(self) -> dict:
        return {"method": self.method, "weights": self.weights, "kept_layers": list(self.kept_layers),
                "kept_nodes": list(self.kept)}


class Adapter(Protocol):
    @property
    def runtime(self) -> str: ...  # "onnxruntime", "openvino", "qnn"

    @property
    def higher(self) -> str: ...  # what a kept layer becomes there: "float", "16-bit weights"

    @property
    def start(self) -> Candidate: ...  # what plain int8 is on this runtime (the user's options)

    @property
    def methods(self) -> tuple[str, ...]: ...  # calibration methods to try, the start's first

    @property
    def weight_schemes(self) -> tuple[str, ...]: ...  # weight schemes to try, the start's first

    @property
    def calibrations(self) -> int: ...  # calibration passes run so far (ranges are reused where the quantizer can)

    def units(self) -> list[Unit]: ...

    def build(self, candidate: Candidate, target: Path) -> Path: ...

    def runner(self, path: Path) -> RunBatch: ...

    def reproduce(self, candidate: Candidate) -> str: ...


@dataclass(frozen=True)
class Measured:
    """A candidate judged: `lost` points (mIoU with labels, else argmax agreement), and whether it is acceptable."""

    lost: float
    ok: bool
    argmax_agreement: float
    miou: float | None
    details: dict = field(default_factory=dict)
    parity: Any = field(default=None, compare=False)  # the runtimes.measure.parity.Parity measured, when the judge has one

    def to_dict(self) -> dict:
        return {"lost_points": finite(self.lost), "within_budget": self.ok, "argmax_agreement": self.argmax_agreement,
                "miou": self.miou, **self.details}


def finite(value: float) -> float | None:
    """JSON has no infinity: a variant that failed to build records None."""
    return value if math.isfinite(value) else None


Judge = Callable[[RunBatch], Measured]  # how to run a candidate -> its measurement

SUFFIXES = {"openvino": ".xml", "executorch": ".pte", "litert": ".tflite"}  # every other runtime's: .onnx files


def artefact_suffix(adapter: Adapter) -> str:
    """The suffix of the files `adapter.build` writes: an OpenVINO IR, an ExecuTorch program, a LiteRT file, else ONNX."""
    return SUFFIXES.get(adapter.runtime, ".onnx")
