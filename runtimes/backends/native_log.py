"""What native libraries write straight to file descriptor 2, kept off the user's terminal.

LiteRT's and ExecuTorch's C++ code log at load time ("Created TensorFlow Lite XNNPACK delegate",
ExecuTorch's cpuinfo probing) past Python's `sys.stderr`; segedge's commands promise one line on
stderr for an error and nothing else, so loading happens inside `native_stderr_captured()`, which
hands back what was written for callers that parse it (the XNNPACK delegate's partition summary).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[Callable[[], str]]:
    """Descriptor 2 into a temporary file for the block; yields a reader of what landed there."""
    with tempfile.TemporaryFile() as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            yield lambda: (log.seek(0), log.read().decode(errors="replace"))[1]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
