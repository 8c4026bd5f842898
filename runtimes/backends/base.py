"""The runtime axis: runtime names, what a backend offers, what it opens, and the one `RuntimeSpec`.

A *backend* is one runtime (ONNX Runtime, OpenVINO, ...): it names itself, owns file suffixes (the
files it opens as their own runtime: `.xml` is OpenVINO's), says how to install it, opens a file
under a `RuntimeSpec` into a `ModelRunner`, and makes a benchmark runner of one. The registry
(`runtimes.backends`) chooses a backend by name or by a file's suffix.

`RuntimeSpec` is how every caller says which runtime runs a model and how: the Predictor's
keywords, each CLI verb's runtime option group and each library request build one, and it is
validated here, once.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..model.card import ModelCard
from ..errors import UsageError
from ..model.inspection import Inspection
from ..measure.machine import check_threads
from .onnxruntime_providers import Provider, ProviderOptions

if TYPE_CHECKING:  # the benchmark harness (and psutil) load when something is timed, not with the Predictor
    from ..measure.timing import Runner

# Inference precisions a runtime may be asked to run float parts at (OpenVINO's INFERENCE_PRECISION_HINT).
PRECISION_HINTS = ("f32", "bf16", "f16")


class Runtime(str, Enum):
    """The built-in backends' names. A runtime is named by a string (`RuntimeSpec.runtime`): a backend
    registered later (`runtimes.backends.register_backend`) needs no member here."""

    onnxruntime = "onnxruntime"
    openvino = "openvino"

    def __str__(self) -> str:
        return self.value


def runtime_name(value: Runtime | str) -> str:
    """A runtime as the plain string the registry keys backends by."""
    return str(value.value if isinstance(value, Enum) else value)


def as_runtime(name: str) -> Runtime | str:
    """A built-in runtime's name as its `Runtime` member (old callers read `.value`); another as it is."""
    return Runtime(name) if name in Runtime._value2member_map_ else name


def check_hint(hint: str | None) -> str | None:
    """The precision hint to pass on: None for None or "auto" (the runtime's own choice)."""
    if hint is None or hint == "auto":
        return None
    if hint not in PRECISION_HINTS:
        raise UsageError(f"the OpenVINO precision hint must be auto, {', '.join(PRECISION_HINTS)}; got {hint!r} "
                         f"(--openvino-hint must be {', '.join(PRECISION_HINTS[:-1])} or {PRECISION_HINTS[-1]}, or auto "
                         "for OpenVINO's own choice)")
    return hint


@dataclass(frozen=True)
class RuntimeSpec:
    """Which runtime runs a model, and how: the one value every verb and the Predictor pass down.

    `runtime`: a backend's name; None is the file's own (`backend_for_path`: OpenVINO for an IR .xml,
    ONNX Runtime for an .onnx file). `provider` and `provider_options`: ONNX Runtime's execution
    provider ("cpu", "cuda", "auto", ...) and its options; other runtimes take "cpu" only.
    `threads`: intra-op threads (None: the CPUs this process may use). `hint`: the inference
    precision of the float parts (f32, bf16, f16; None or "auto": the runtime's choice), also ONNX
    Runtime's OpenVINO provider's. `spinning`: False lets ONNX Runtime's idle threads spin only
    briefly, then park (for sessions sharing their cores, see `runtimes.backends.onnxruntime_session.session_options`).
    """

    runtime: str | None = None
    provider: str = "cpu"
    provider_options: ProviderOptions = field(default_factory=ProviderOptions)
    threads: int | None = None
    hint: str | None = None
    spinning: bool = True

    def __post_init__(self) -> None:
        if self.runtime is not None:
            object.__setattr__(self, "runtime", runtime_name(self.runtime))
        object.__setattr__(self, "provider", runtime_name(self.provider or Provider.cpu))
        check_threads(self.threads)
        # One hint, in one place: the provider options' copy (ONNX Runtime's OpenVINO provider) follows it.
        hint = check_hint(self.hint if self.hint is not None else self.provider_options.openvino_hint)
        object.__setattr__(self, "hint", hint)
        if self.provider_options.openvino_hint != hint:
            object.__setattr__(self, "provider_options", replace(self.provider_options, openvino_hint=hint))

    def predictor_keywords(self) -> dict[str, Any]:
        """The `Predictor` keywords that build this spec again (what a Ray actor is sent; provider options aside)."""
        return {"runtime": self.runtime, "providers": self.provider, "threads": self.threads, "openvino_hint": self.hint}

    def on(self, runtime: Runtime | str | None) -> RuntimeSpec:
        """This spec for another runtime (None: the file's own)."""
        return replace(self, runtime=runtime)


class ModelRunner(Protocol):
    """What the Predictor needs of an opened model: one N x 3 x H x W float32 batch in, its N x C x h x w
    float32 scores out, and what it learned while opening the file."""

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

    def describe(self) -> str:
        """One line: what really runs the model (runtime, version, device, precision, threads)."""
        ...


@runtime_checkable
class LabelsInGraph(Protocol):
    """A runner that can run the argmax inside its compiled model (optional: OpenVINO's has it)."""

    def labels(self, batch: np.ndarray) -> np.ndarray | None:
        """N x h x w uint8 class indices, or None where this model's output does not allow it."""
        ...


class Backend:
    """One runtime behind segedge. A new runtime subclasses this, sets the four class attributes, writes
    `open`, and is registered (`runtimes.backends.register_backend`)."""

    name: str = ""  # the runtime's name: `runtime=` / `--runtime`
    suffixes: tuple[str, ...] = ()  # file suffixes this runtime opens by default (lower case, with the dot)
    install: str = ""  # what an app installs to run it ("pip install 'segedge[openvino]'")
    distribution: str = ""  # the package whose version `version()` reports
    file_kind: str = "a model file"  # what its own files are called in messages ("an OpenVINO IR")

    def open(self, path: Path, spec: RuntimeSpec, overrides: Mapping[str, Any]) -> ModelRunner:
        """`path` opened under `spec` (`overrides`: model card fields replacing the file's); raises segedge's
        errors (`ModelFileError`, `UsageError`, `ProviderError`) in one line."""
        raise NotImplementedError

    def reads(self, path: str | os.PathLike[str]) -> bool:
        """Whether this runtime can open `path` at all (a file another runtime owns may still be readable)."""
        return Path(path).suffix.lower() in self.suffixes

    def timing_runner(self, model: ModelRunner, setup_s: float, name: str | None = None) -> Runner:
        """`model` as a benchmark row (`runtimes.measure.timing.Runner`): timed through `run`, as the Predictor runs it."""
        from ..measure.timing import Runner

        precision = model.card.precision.value
        return Runner(name=name or f"{self.name} {precision}", runtime=self.about(), provider="cpu", run=model.run,
                      setup_s=setup_s, notes=[model.describe()],
                      tags={"precision": precision, "runtime": self.name, "provider": "cpu"})

    def version(self) -> str | None:
        """The installed runtime's version, None when it is not installed."""
        if not self.distribution:
            return None
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def about(self) -> str:
        """The runtime and its version, as a benchmark row names it ("openvino 2025.3.0")."""
        return f"{self.name} {self.version() or ''}".strip()
