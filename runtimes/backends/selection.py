"""Which runtime runs a model behind the Predictor, for callers that name it loosely.

The runtime axis lives in `runtimes.backends` (one module per runtime, a registry, `RuntimeSpec`);
this module keeps the loose calling convention older callers use: `open_model(path, runtime,
provider, threads, hint=...)` builds a `RuntimeSpec` and opens the file through the registry.

A file made for one runtime still runs on the other (OpenVINO runs ONNX Runtime's QDQ int8 well;
ONNX Runtime runs NNCF's QDQ ONNX, slowly), so a mismatch is a warning, in one line, naming the
fix; an OpenVINO IR (.xml) given to ONNX Runtime cannot run at all and is an error. No runtime
named means the file's own (`runtime_for`): OpenVINO for an IR, ONNX Runtime for an .onnx file,
so the file a report names opens as it was timed without a flag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import RuntimeMismatchWarning, RuntimeSpec, backend_named, chosen_backend, open_runner
from .base import ModelRunner, Runtime

__all__ = ["ModelRunner", "Runtime", "RuntimeMismatchWarning", "install_line", "is_ir", "open_model", "runtime_for"]


def runtime_for(path: str | os.PathLike[str], value: Runtime | str | None) -> str:
    """The name of the runtime that opens `path`: `value`, or (None) the file's own."""
    return chosen_backend(path, value).name


def install_line(runtime: Runtime | str) -> str:
    """What an app installs to run `runtime` (the report's verdict names it)."""
    return backend_named(runtime).install


def is_ir(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() == ".xml"


def open_model(path: str | os.PathLike[str], runtime: Runtime | str | None, provider: Any, threads: int | None, *,
               hint: str | None = None, overrides: Mapping[str, Any] | None = None) -> ModelRunner:
    """`path` opened by `runtime` (None: the file's own) on `provider` (ONNX Runtime's) with `hint`."""
    return open_runner(path, RuntimeSpec(runtime, provider or "cpu", threads=threads, hint=hint), overrides)
