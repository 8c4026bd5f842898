"""Keeping the converters' chatter off stdout and stderr (the CLI's `--json` goes to stdout).

ONNX Runtime's tools print progress (`print`), log through the root logger (the quantizer's
`logging.warning` about opsets and pre-processing) and through loggers of their own
(`ort_format_model.utils` logs every config file it writes at INFO); OpenVINO and onnx print
nothing we need. What they say that matters surfaces as an exception, which callers turn into
segedge's typed errors.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

# torchao and torch's pytree log warnings on import of litert-torch and ExecuTorch (their handlers, not the root's).
_LOGGERS = ("", "ort_format_model.utils", "onnxruntime", "onnx", "torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)

