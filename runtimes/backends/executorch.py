"""ExecuTorch as a backend (`segedge[executorch]`): .pte programs on ExecuTorch's runtime with XNNPACK.

The adapter itself is `runtimes.backends.executorch_session` (`open_executorch`, `ExecuTorchSession`; its
Python runtime takes torch tensors, so opening a file imports torch). Importing this module
imports neither ExecuTorch nor torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .executorch_session import INSTALL, ExecuTorchSession, open_executorch
from .base import Backend, RuntimeSpec
from .litert import _cpu_only


class ExecuTorchBackend(Backend):
    name = "executorch"
    suffixes = (".pte",)
    install = INSTALL
    distribution = "executorch"
    file_kind = "an ExecuTorch (.pte) program"

    def open(self, path: Path, spec: RuntimeSpec, overrides: Mapping[str, Any]) -> ExecuTorchSession:
        _cpu_only(self.name, spec)
        return open_executorch(path, spec.threads, overrides)


BACKEND = ExecuTorchBackend()
