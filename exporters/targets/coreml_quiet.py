"""coremltools, imported and run without its chatter.

On import it says, through its logger, that it cannot load its macOS-only prediction library
(`libcoremlpython`) and that this torch is newer than the one it was tested with; converting
draws tqdm progress bars on stderr. None of it is for segedge's user: what matters surfaces as
an exception (or, for the missing library, as `can_predict()`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator
from types import ModuleType

from runtimes.errors import UsageError

INSTALL = "pip install coremltools==9.0 (or segedge[coreml])"
_LOGGERS = ("coremltools", "root", "torch.utils._pytree", "torch._export", "torch.export")


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def coremltools() -> ModuleType:
    """The coremltools module, or a `UsageError` saying how to install it."""
    try:
        with silenced():
            import coremltools as ct
    except ImportError:
        raise UsageError(f"Core ML packages need coremltools: {INSTALL}") from None
    return ct


def can_predict() -> tuple[bool, str]:
    """Whether this machine can run a Core ML model, and why not."""
    if sys.platform != "darwin":
        return False, f"a .mlpackage runs only on macOS / iOS (Core ML); this machine is {sys.platform}"
    try:
        with silenced():
            import coremltools.libcoremlpython  # noqa: F401  (the prediction library, macOS wheels only)
    except ImportError:
        return False, "coremltools' prediction library (libcoremlpython) is missing from this install"
    return True, ""
