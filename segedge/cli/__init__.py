"""`segedge` command line: one module per verb; `main(argv)` is the one error boundary.

Library code raises `SegedgeError`s; here they become one line on stderr and the exit code
they carry (2 usage, 1 runtime). Typer's own usage errors get the same one-line treatment.
Ctrl-C exits 130 and SIGTERM 143 after unwinding, every time: `runtimes.guards.interrupts` records the
signal, so that C code swallowing the KeyboardInterrupt cannot let the run finish, and enforces it.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from collections.abc import Sequence

import typer
from typer.exceptions import Abort, TyperException

from runtimes.errors import SegedgeError
from runtimes.guards.interrupts import EXIT_CODES, MESSAGES, received, stop_on_signals

from segedge.cli import bench_cmd, eval_cmd, export_cmd, info_cmd, models_cmd, predict_cmd, quantize_cmd, report_cmd, serve_cmd, verify_cmd  # noqa: F401  (register commands)
from segedge.cli.app import app

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    with stop_on_signals() as stopped_by:
        code = _main(argv)
    if code == 130:
        # Reported once the work is unwound (the watchdog reports for itself if it ends the run).
        signum = stopped_by[0] if stopped_by else signal.SIGINT
        _fail(MESSAGES.get(signal.Signals(signum), "interrupted"))
        return 143 if signum == signal.SIGTERM else 130
    return code


def _main(argv: Sequence[str] | None) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=list(argv) if argv is not None else None, prog_name="segedge", standalone_mode=False)
    except (Abort, KeyboardInterrupt):
        return 130
    except Exception as exc:
        if received() is not None:  # C code turned the KeyboardInterrupt into an error of its own
            return 130
        code = _report(exc)
        if code is None:
            raise  # a bug: its traceback is what a report needs
        return code
    if result == 130:  # Typer turned a Ctrl-C into exit code 130
        return 130
    if received() is not None:  # a Ctrl-C swallowed on the way to the end of the command
        return 130
    return result if isinstance(result, int) else 0


def _report(exc: Exception) -> int | None:
    """One line on stderr for an expected failure; its exit code (None: not one of those)."""
    if isinstance(exc, TyperException):  # click's usage errors (exit 2) and friends, vendored by Typer
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `segedge {ctx.info_name} --help`)" if ctx is not None and ctx.parent else " (see `segedge --help`)"
        _fail(exc.format_message() + (hint if exc.exit_code == 2 else ""))
        return exc.exit_code
    if isinstance(exc, SegedgeError):
        _fail(str(exc))
        return exc.exit_code
    if isinstance(exc, MemoryError):  # numpy or the runtime could not allocate: a huge image or a hostile model
        _fail("out of memory (a smaller image, --tile, or --isolate for an untrusted model may help)")
        return 1
    if isinstance(exc, OSError):  # a disk or permission failure the library did not anticipate
        _fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
        return 1
    return None


def _fail(message: str) -> None:
    # One line, no rich markup interpretation of user-supplied text.
    sys.stderr.write(f"segedge: error: {' '.join(message.split())}\n")
    sys.stderr.flush()


def run() -> None:
    """The console script (and `python -m segedge`): `main`, then exit with its code.

    Before and after `main` (whose boundary has handlers of its own), a Ctrl-C or SIGTERM ends the
    process at once with the code it asks for: the work is either not begun or done and written.
    """
    for signum in EXIT_CODES:
        signal.signal(signum, _leave_late)  # what `stop_on_signals` restores: no window between
    try:
        code = main()
    except KeyboardInterrupt:
        # A Ctrl-C can surface again after the boundary reported it (torch's C++ checks signals
        # on its own); the work is already unwound, so exit as an interrupted command does.
        code = 130
    # No interpreter shutdown: CPython 3.11 remembers a KeyboardInterrupt that ended any C-level
    # `PyRun_*` evaluation (pybind11's eval inside the exporters) even once Python code caught it
    # and kills the process with SIGINT at normal exit (-2, not the code); and while it finalizes
    # (seconds with torch loaded) it resets the handlers, so a late Ctrl-C ended the process by
    # the signal too. atexit's functions (Ray's shutdown, temp-file cleanup) still run.
    atexit._run_exitfuncs()
    _leave(code)


def _leave_late(signum: int, frame: object) -> None:
    _leave(EXIT_CODES[signal.Signals(signum)])


def _leave(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
