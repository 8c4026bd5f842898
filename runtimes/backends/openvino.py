"""OpenVINO's own runtime as a backend (`segedge[openvino]`): IR .xml files, and .onnx files too.

The adapter itself is `runtimes.backends.openvino_session` (`open_openvino`, `OpenVINOSession`: compiled per
input shape, the argmax optionally in the graph); its benchmark runner is
`runtimes.backends.openvino_timing.session_runner`. Importing this module does not import OpenVINO: opening
a file does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .openvino_session import OpenVINOSession, open_openvino
from .base import Backend, ModelRunner, RuntimeSpec

if TYPE_CHECKING:
    from ..measure.timing import Runner


class OpenVINOBackend(Backend):
    name = "openvino"
    suffixes = (".xml",)
    install = "pip install 'segedge[openvino]'"
    distribution = "openvino"
    file_kind = "an OpenVINO IR"

    def reads(self, path: str | os.PathLike[str]) -> bool:
        return Path(path).suffix.lower() in (".xml", ".onnx")

    def open(self, path: Path, spec: RuntimeSpec, overrides: Mapping[str, Any]) -> OpenVINOSession:
        if spec.provider != "cpu":
            raise UsageError(f"the provider ({spec.provider}) is ONNX Runtime's choice; runtime='openvino' runs on "
                             "OpenVINO's CPU device")
        return open_openvino(path, spec.threads, hint=spec.hint, overrides=overrides)

    def timing_runner(self, model: ModelRunner, setup_s: float, name: str | None = None) -> Runner:
        from .openvino_timing import session_runner

        return session_runner(model, setup_s, name=name)


BACKEND = OpenVINOBackend()
