"""`segedge` command line: one module per verb; `main(argv)` is the one error boundary.

Library code raises `SegedgeError`s; here they become one line on stderr and the exit code
they carry (2 usage, 1 runtime). Typer's own usage errors get the same one-line treatment.
Typer turns Ctrl-C into exit code 130 itself; SIGTERM unwinds the same way and exits 143.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

import typer
from typer.exceptions import Abort, TyperException

from runtimes.errors import SegedgeError

from segedge.cli import bench_cmd, eval_cmd, export_cmd, info_cmd, models_cmd, predict_cmd, quantize_cmd, report_cmd, verify_cmd  # noqa: F401  (register commands)
from segedge.cli.app import app

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    with _terminate_like_ctrl_c() as terminated:
        code = _main(argv, terminated)
    if code == 130 and terminated:
        return 143  # 128 + SIGTERM, as a shell reports it
    return code


def _main(argv: Sequence[str] | None, terminated: list[int]) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=list(argv) if argv is not None else None, prog_name="segedge", standalone_mode=False)
    except (Abort, KeyboardInterrupt):
        _fail("terminated" if terminated else "interrupted")
        return 130
    except TyperException as exc:  # click's usage errors (exit 2) and friends, vendored by Typer
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `segedge {ctx.info_name} --help`)" if ctx is not None and ctx.parent else " (see `segedge --help`)"
        _fail(exc.format_message() + (hint if exc.exit_code == 2 else ""))
        return exc.exit_code
    except SegedgeError as exc:
        _fail(str(exc))
        return exc.exit_code
    except MemoryError:  # numpy or the runtime could not allocate: a huge image or a hostile model
        _fail("out of memory (a smaller image, --tile, or --isolate for an untrusted model may help)")
        return 1
    except OSError as exc:  # a disk or permission failure the library did not anticipate
        _fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
        return 1
    if result == 130:  # Typer turned a Ctrl-C into exit code 130
        _fail("terminated" if terminated else "interrupted")
    return result if isinstance(result, int) else 0


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[list[int]]:
    """SIGTERM (a service manager or `kill` stopping segedge) unwinds the stack as Ctrl-C does.

    Python's default for SIGTERM is to die on the spot, leaving temporary files and folders
    behind; raised as KeyboardInterrupt, every `finally` and context manager cleans up first.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _fail(message: str) -> None:
    # One line, no rich markup interpretation of user-supplied text.
    sys.stderr.write(f"segedge: error: {' '.join(message.split())}\n")
    sys.stderr.flush()


def run() -> None:
    """The console script (and `python -m segedge`): `main`, then exit with its code."""
    try:
        code = main()
    except KeyboardInterrupt:
        # A Ctrl-C can surface again after the boundary reported it (torch's C++ checks signals
        # on its own); the work is already unwound, so exit as an interrupted command does.
        code = 130
    if code in (130, 143):
        # CPython 3.11 remembers a KeyboardInterrupt that ended any C-level `PyRun_*` evaluation
        # (pybind11's eval inside the exporters) even once Python code caught it, and at normal
        # exit kills the process with SIGINT: exit -2 instead of 130, now and then. The work is
        # unwound and its temp files removed by now, so leave without that shutdown step.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
