"""Which runtime runs a model behind the Predictor: ONNX Runtime or OpenVINO's own runtime.

One enum, declared once: the Predictor's `runtime=`, the CLI's `--runtime`, `quantize --for` and
the card's `runtime` field (the runtime a quantized file was made for) all spell it this way.
`open_model` picks the adapter; each adapter offers what `ModelSession` does (path, card,
inspection, `run(batch)`) and says what it really runs (`describe()`).

A file made for one runtime still runs on the other (OpenVINO runs ONNX Runtime's QDQ int8 well;
ONNX Runtime runs NNCF's QDQ ONNX, slowly), so a mismatch is a warning, in one line, naming the
fix; an OpenVINO IR (.xml) given to ONNX Runtime cannot run at all and is an error. No runtime
named means the file's own (`runtime_for`): OpenVINO for an IR, ONNX Runtime for an .onnx file,
so the file a report names opens as it was timed without a flag.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .card import ModelCard
from .errors import ModelFileError, UsageError
from .inspection import Inspection


class Runtime(str, Enum):
    onnxruntime = "onnxruntime"
    openvino = "openvino"

    def __str__(self) -> str:
        return self.value


# What an app installs for each runtime (the report's verdict names it).
INSTALL = {Runtime.onnxruntime: "pip install segedge", Runtime.openvino: "pip install 'segedge[openvino]'"}


class RuntimeMismatchWarning(UserWarning):
    """A file made for one runtime (its card's `runtime`) opened on the other."""


class ModelRunner(Protocol):
    """What the Predictor needs of an adapter (`ModelSession`, `OpenVINOSession`)."""

    @property
    def path(self) -> Path: ...

    @property
    def card(self) -> ModelCard: ...

    @property
    def inspection(self) -> Inspection: ...

    @property
    def stored_card(self) -> ModelCard | None: ...

    @property
    def active_providers(self) -> tuple[str, ...]: ...

    def run(self, batch: np.ndarray) -> np.ndarray: ...


def runtime_for(path: str | os.PathLike[str], value: Runtime | str | None) -> Runtime:
    """`value` parsed; None: the runtime that opens `path` as it is (OpenVINO for an IR .xml, else ONNX Runtime)."""
    if value is None:
        return Runtime.openvino if is_ir(path) else Runtime.onnxruntime
    try:
        return Runtime(value)
    except ValueError:
        raise UsageError(f"unknown runtime {value!r}; choose from {', '.join(r.value for r in Runtime)}") from None


def is_ir(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() == ".xml"


def mismatch(card: ModelCard, runtime: Runtime, path: str | os.PathLike[str]) -> str | None:
    """One line when `card` says the file was made for another runtime than `runtime`, else None."""
    made_for = card.runtime
    if made_for is None or made_for == runtime.value:
        return None
    fix = (f"run it with runtime='{made_for}' (--runtime {made_for})"
           + (f", installed by {INSTALL[Runtime(made_for)]}" if made_for in INSTALL else "")
           + f", or quantize the fp32 model for {runtime.value}: segedge quantize --for {runtime.value}")
    return f"{path} was quantized for {made_for}, not {runtime.value}: {fix}"


def open_model(path: str | os.PathLike[str], runtime: Runtime | str | None, provider: Any, threads: int | None, *,
               hint: str | None = None, overrides: Mapping[str, Any] | None = None) -> ModelRunner:
    """The adapter of `runtime` (None: the file's own) with `path` open (ONNX Runtime's on `provider`;
    OpenVINO's with `hint`).

    A file made for the other runtime warns (`RuntimeMismatchWarning`); an IR for ONNX Runtime raises.
    """
    chosen = runtime_for(path, runtime)
    model: ModelRunner
    if chosen is Runtime.openvino:
        if getattr(provider, "value", provider) not in (None, "cpu"):
            raise UsageError(f"the provider ({getattr(provider, 'value', provider)}) is ONNX Runtime's choice; "
                             "runtime='openvino' runs on OpenVINO's CPU device")
        from .openvino_session import open_openvino

        model = open_openvino(path, threads, hint=hint, overrides=overrides)
    else:
        if is_ir(path):
            raise ModelFileError(f"{path} is an OpenVINO IR: open it with runtime='openvino' (--runtime openvino; "
                                 f"{INSTALL[Runtime.openvino]})")
        if hint is not None:
            raise UsageError("the OpenVINO precision hint is for runtime='openvino' (--runtime openvino)")
        from .session import open_session

        model = open_session(path, provider, threads, overrides=overrides)
    line = mismatch(model.card, chosen, path)
    if line is not None:
        warnings.warn(line, RuntimeMismatchWarning, stacklevel=3)
    return model
