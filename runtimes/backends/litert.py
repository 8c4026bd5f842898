"""LiteRT as a backend (`segedge[litert]`): .tflite files on ai-edge-litert's interpreter with XNNPACK, no torch.

The adapter itself is `runtimes.backends.litert_session` (`open_litert`, `LiteRTSession`). Importing this
module does not import LiteRT: opening a file does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .litert_metadata import INSTALL
from .litert_session import LiteRTSession, open_litert
from .base import Backend, RuntimeSpec


class LiteRTBackend(Backend):
    name = "litert"
    suffixes = (".tflite",)
    install = INSTALL
    distribution = "ai-edge-litert"
    file_kind = "a LiteRT (.tflite) model"

    def open(self, path: Path, spec: RuntimeSpec, overrides: Mapping[str, Any]) -> LiteRTSession:
        _cpu_only(self.name, spec)
        return open_litert(path, spec.threads, overrides)


def _cpu_only(name: str, spec: RuntimeSpec) -> None:
    if spec.provider != "cpu":
        raise UsageError(f"the provider ({spec.provider}) is ONNX Runtime's choice; runtime='{name}' runs on the CPU "
                         "with its XNNPACK delegate")
    if spec.hint is not None:
        raise UsageError("the precision hint is OpenVINO's; a LiteRT or ExecuTorch file runs at the precision it holds")


BACKEND = LiteRTBackend()
