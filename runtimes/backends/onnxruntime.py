"""ONNX Runtime as a backend: .onnx and ORT-format files, on the execution provider the spec names.

The adapter itself is `runtimes.backends.onnxruntime_session` (`open_session`, `ModelSession`); its benchmark runner is
`runtimes.measure.timing.ort_runner`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnxruntime as ort

from ..errors import UsageError
from .onnxruntime_session import ModelSession, open_session
from .base import Backend, ModelRunner, RuntimeSpec

if TYPE_CHECKING:
    from ..measure.timing import Runner


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    suffixes = (".onnx", ".ort")
    install = "pip install segedge"
    distribution = "onnxruntime"
    file_kind = "an ONNX model"

    def open(self, path: Path, spec: RuntimeSpec, overrides: Mapping[str, Any]) -> ModelSession:
        if spec.hint is not None and spec.provider != "openvino":
            raise UsageError("the OpenVINO precision hint is for runtime='openvino' (--runtime openvino) or ONNX "
                             "Runtime's openvino provider")
        return open_session(path, spec.provider, spec.threads, spec.provider_options, spinning=spec.spinning,
                            overrides=overrides)

    def timing_runner(self, model: ModelRunner, setup_s: float, name: str | None = None) -> Runner:
        from ..measure.timing import ort_runner

        assert isinstance(model, ModelSession)  # what `open` returns
        return ort_runner(model, setup_s, name=name)

    def version(self) -> str | None:
        return str(ort.__version__)  # whichever build is installed (onnxruntime, -gpu, -openvino, ...)


BACKEND = OnnxRuntimeBackend()
