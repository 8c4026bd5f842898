"""What building for a target found and wrote: check reports, the verification, the artefacts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtimes.model.card import ModelCard
from runtimes.errors import ExportError
from runtimes.measure.parity import Parity


@dataclass(frozen=True)
class UnsupportedNode:
    """One row of the table of what would not run on the target."""

    op_type: str  # "domain:op" outside ai.onnx
    node: str  # the node's name (its first output when it has none)
    reason: str
    check: str


@dataclass(frozen=True)
class CheckReport:
    """One operator check on one graph.

    `fallback`: where the unsupported nodes run instead (ONNX Runtime puts what an execution
    provider refuses on its CPU provider); None when the runtime refuses the whole model.
    `partitions`: how many pieces the supported nodes form (ONNX Runtime's estimate; every
    boundary is a device round trip); None where it does not apply. `ran`: False when this
    machine cannot run the check (`note` says why).
    """

    check: str
    runtime: str
    source: str
    ran: bool
    nodes: int
    supported: int
    unsupported: tuple[UnsupportedNode, ...] = ()
    partitions: int | None = None
    fallback: str | None = None
    caveats: tuple[str, ...] = ()  # conditions the source states and nothing here tests
    note: str = ""

    @property
    def falling_back(self) -> int:
        """Nodes that would run on the fallback provider (0 when there is none: the model fails)."""
        return len(self.unsupported) if self.fallback else 0

    @property
    def blocking(self) -> bool:
        """The runtime would refuse the model: unsupported nodes and nowhere for them to go."""
        return self.ran and bool(self.unsupported) and self.fallback is None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["unsupported"] = [asdict(row) for row in self.unsupported]
        out["caveats"] = list(self.caveats)
        out["falling_back"] = self.falling_back
        return out


@dataclass(frozen=True)
class Verification:
    """The artefact run here against the fp32 ONNX file on images (`exporters.targets.verify.compare`)."""

    runtime: str
    reference: str
    preset: str
    parity: Parity
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def argmax_agreement(self) -> float:
        return self.parity.argmax_agreement

    @property
    def min_class_iou(self) -> float:
        return self.parity.min_class_iou

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "reference": self.reference, "preset": self.preset, "passed": self.passed,
                "failures": list(self.failures), **self.parity.to_dict()}


@dataclass(frozen=True)
class TargetResult:
    """`build_for_target`'s answer. `artefacts[0]` is the file to deploy; the others sit beside it."""

    target: str
    source: Path
    artefacts: tuple[Path, ...]
    card: ModelCard | None
    input_shape: tuple[int, ...] | None  # None: N, H and W stay dynamic
    opset: int
    precision: str
    checks: tuple[CheckReport, ...]
    verification: Verification | None
    not_built: tuple[str, ...] = ()
    not_checked: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def path(self) -> Path:
        return self.artefacts[0]

    @property
    def unsupported(self) -> tuple[UnsupportedNode, ...]:
        """Every row of every check: the table the CLI prints."""
        return tuple(row for report in self.checks for row in report.unsupported)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "source": str(self.source),
            "artefacts": [str(p) for p in self.artefacts],
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "opset": self.opset,
            "precision": self.precision,
            "checks": [c.to_dict() for c in self.checks],
            "unsupported": [asdict(row) for row in self.unsupported],
            "verification": self.verification.to_dict() if self.verification else None,
            "not_built": list(self.not_built),
            "not_checked": list(self.not_checked),
            "notes": list(self.notes),
            "card": self.card.to_dict() if self.card else None,
        }


class TargetBuildError(ExportError):
    """The artefact could not be written; `checks` holds what the checks found before that."""

    def __init__(self, message: str, checks: tuple[CheckReport, ...] = ()) -> None:
        super().__init__(message)
        self.checks = checks
