"""What `segedge quantize` is asked to do: one typed request the CLI, `export --precision` and `report` build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from exporters.int8_options import DEFAULT_CALIB_COUNT, Method
from runtimes.errors import UsageError
from runtimes.model.precision import Precision
from runtimes.backends.selection import Runtime

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
    overwrite: bool = False  # replace files segedge did not write; convert `model` in place (only once it passes)
    card_overrides: dict[str, Any] = field(default_factory=dict)  # for files exported elsewhere: normalisation etc.
    # The runtime the file is made for: ONNX Runtime's QDQ quantizer, or NNCF's for OpenVINO (an IR).
    runtime: Runtime = Runtime.onnxruntime

    def __post_init__(self) -> None:
        if self.precision != AUTO:
            object.__setattr__(self, "precision", Precision(self.precision))
        object.__setattr__(self, "runtime", Runtime(self.runtime))
        if self.precision == Precision.fp32:
            raise UsageError("quantize converts an fp32 model to fp16, int8 or auto; it is fp32 already")
        if self.runtime is Runtime.openvino and self.precision == Precision.fp16:
            raise UsageError("--for openvino makes int8 (NNCF); OpenVINO runs an fp32 file in bf16 or f16 by itself "
                             "(--openvino-hint), no fp16 file needed")
        if self.runtime is Runtime.openvino and self.output is not None and self.output.suffix.lower() != ".xml":
            raise UsageError(f"--for openvino writes an IR (.xml + .bin): name the output .xml, not {self.output.name}")
        if self.runtime is Runtime.openvino and self.debug:
            raise UsageError("--debug compares ONNX Runtime's QDQ tensors; it goes with --for onnxruntime")
        if self.runtime is Runtime.openvino and not self.per_channel:
            raise UsageError("--per-tensor is ONNX Runtime's quantizer's choice; NNCF quantizes weights per channel")

    @property
    def name(self) -> str:
        return str(self.precision)

    @property
    def suffix(self) -> str:
        """What the quantized file is: ONNX, or for OpenVINO an IR (.xml + .bin)."""
        return ".xml" if self.runtime is Runtime.openvino else ".onnx"
