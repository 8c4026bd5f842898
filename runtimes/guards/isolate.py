"""Opening an untrusted model in a child process first, under a memory and a time limit.

ONNX Runtime has crashed (SIGSEGV) and aborted on out-of-memory for malformed models. A service
that loads such a file in-process dies with it. `probe_model` loads the file and runs it once in a
child; a crash, an abort, a hang or a memory blow-up becomes a `ModelFileError`, and only a model
that survived is then opened by the caller.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import ModelFileError

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_MB = 8192


def probe_model(
    path: str | os.PathLike[str],
    provider: str = "cpu",
    input_size: tuple[int, int] = (64, 64),
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> None:
    """Raise `ModelFileError` unless `path` loads and runs once in a limited child process."""
    path = Path(path)
    # The child limits its own memory: a preexec_fn could deadlock a parent that runs threads
    # (a service calling Predictor(isolate=True)), as the subprocess documentation warns.
    cmd = [sys.executable, "-m", "runtimes.model.probe", str(path), provider, str(input_size[0]), str(input_size[1]), str(memory_mb)]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": _package_root() + os.pathsep + os.environ.get("PYTHONPATH", "")},
        )
    except subprocess.TimeoutExpired:
        raise ModelFileError(f"{path}: loading and a first run did not finish within {timeout_s:g} s (isolated)") from None
    if done.returncode == 0:
        return
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        why = "ran out of memory" if name in ("SIGABRT", "SIGKILL") else "crashed the runtime"
        raise ModelFileError(f"{path}: {why} ({name}) while loading or running it (isolated, limit {memory_mb} MB)")
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    message = lines[-1] if lines else f"exit code {done.returncode}"
    if any(s in message for s in ("MemoryError", "bad_alloc", "Failed to allocate", "Cannot allocate memory")):
        message = f"ran out of memory while loading or running it (isolated, limit {memory_mb} MB)"
    message = message.removeprefix("segedge: error: ")
    raise ModelFileError(message if message.startswith(str(path)) else f"{path}: {message}")


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[1])
