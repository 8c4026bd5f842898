"""What `segedge quantize` is asked to do: one typed request the CLI, `export --precision` and `report` build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from exporters.int8_options import DEFAULT_CALIB_COUNT, Method
from runtimes.errors import UsageError
from runtimes.precision import Precision

AUTO: Literal["auto"] = "auto"  # not a precision: the fastest precision within the budget
Target = Precision | Literal["auto"]


@dataclass(frozen=True)
class QuantizeRequest:
    model: Path
    precision: Target
    output: Path | None = None
    calib: Path | None = None
    calib_count: int = DEFAULT_CALIB_COUNT
    method: Method = Method.minmax
    per_channel: bool = True
    exclude: tuple[str, ...] = ()
    budget: float = 1.0  # auto: mIoU points (with --data) or argmax-agreement points it may lose
    data: Path | None = None
    data_limit: int | None = None
    debug: bool = False
    runs: int = 10  # auto: timed runs per candidate
    card_overrides: dict[str, Any] = field(default_factory=dict)  # for files exported elsewhere: normalisation etc.

    def __post_init__(self) -> None:
        if self.precision != AUTO:
            object.__setattr__(self, "precision", Precision(self.precision))
        if self.precision == Precision.fp32:
            raise UsageError("quantize converts an fp32 model to fp16, int8 or auto; it is fp32 already")

    @property
    def name(self) -> str:
        return str(self.precision)
