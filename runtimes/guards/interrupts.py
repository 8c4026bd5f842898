"""Ctrl-C and SIGTERM stop a run, every time, even when C code swallows the KeyboardInterrupt.

Python turns SIGINT into a KeyboardInterrupt in the main thread. C and C++ libraries that call
back into Python catch it as one more failure and go on: onnxsim's constant folding treats it as
an op it could not fold, torch's exporter machinery as a failed strategy. The run then finished
and exited 0 (issue 15). Three things make the interrupt stick:

1. The signal is *recorded* (`stop_on_signals`), not only raised: `check_interrupted()` raises
   KeyboardInterrupt again wherever the work passes a stage boundary (progress messages, work
   folders) and, above all, right before `runtimes.guards.fileio.atomic_path` renames a finished file
   into place, so a swallowed Ctrl-C can never let a run write its output.
2. Temporary files and folders are registered where they are named (`temporary`), before they
   exist, so whoever ends the process knows what to remove.
3. A watchdog thread, woken by the C-level signal handler through a wakeup pipe (so also while the
   main thread runs C code), gives the normal unwinding `GRACE_S`; if the process is still
   running then, it removes the registered temporaries, kills child processes, runs the clean-ups
   registered for after them (`after_children`: the temporaries those children were writing),
   writes the one error line and leaves with exit code 130 (143 for SIGTERM) through `os._exit`.

The watchdog needs the GIL: C code that holds it without calling back into Python (none seen for
more than about a second in torch.export, onnxsim or ORT's quantizer) delays it by as long.
Library use without `stop_on_signals` (an app embedding the Predictor) is unaffected:
`check_interrupted` is a no-op until a signal is recorded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

GRACE_S = 1.0  # the normal unwinding takes well under 0.5 s; this leaves the 2 s bound a margin
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal, as a shell reports it
MESSAGES = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}

_requested: list[int] = []  # the signals received while `stop_on_signals` is active
_temporaries: dict[str, bool] = {}  # path -> is a folder; plain dict operations are atomic under the GIL
_after_children: dict[int, Callable[[], object]] = {}  # id -> clean-up run once child processes are dead
_exit_lock = threading.Lock()  # held by whichever ends the run: the watchdog, or the unwound main thread


def check_interrupted() -> None:
    """Raise KeyboardInterrupt when a Ctrl-C or SIGTERM was received, even if it was swallowed since."""
    if _requested:
        raise KeyboardInterrupt


def received() -> int | None:
    """The signal that asked this run to stop (SIGINT or SIGTERM), or None."""
    return _requested[0] if _requested else None


@contextlib.contextmanager
def temporary(path: Path, folder: bool = False) -> Iterator[Path]:
    """Register `path` (not yet created) as a temporary the watchdog removes on a forced exit."""
    key = os.fspath(path)
    _temporaries[key] = folder
    try:
        yield path
    finally:
        _temporaries.pop(key, None)


@contextlib.contextmanager
def after_children(clean_up: Callable[[], object]) -> Iterator[None]:
    """Run `clean_up` when the block fails, or on a forced exit once the child processes are killed:
    what workers (Ray's actors) leave when killed mid-write is known to the parent only. Enclose
    whatever ends those workers (`ray_session`), so that they are gone when it runs."""
    key = id(clean_up)
    _after_children[key] = clean_up
    try:
        yield
    except BaseException:
        clean_up()
        raise
    finally:
        _after_children.pop(key, None)


@contextlib.contextmanager
def stop_on_signals(grace_s: float = GRACE_S) -> Iterator[list[int]]:
    """While active, SIGINT and SIGTERM are recorded, raised as KeyboardInterrupt, and enforced.

    For the command line's one boundary; yields a list that holds the signal received, if any,
    once the block is left. Outside the main thread (signals cannot be handled there) it only
    yields the list.
    """
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    _requested.clear()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # the C-level handler must never block
    done = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if not _requested:
            _requested.append(signum)
        _wake(write_fd, signum)  # in case another library took the wakeup fd
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in EXIT_CODES}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watchdog = threading.Thread(target=_watch, args=(read_fd, done, grace_s), name="segedge-interrupt-watchdog",
                                daemon=True)
    watchdog.start()
    try:
        yield got
    finally:
        with _exit_lock:  # blocks for good when the watchdog is already ending the process
            done.set()
        got.extend(_requested[:1])
        _requested.clear()  # check_interrupted is a no-op again for whatever runs next in this process
        signal.set_wakeup_fd(previous_fd)
        for signum, before in previous.items():
            signal.signal(signum, before if before is not None else signal.SIG_DFL)
        _wake(write_fd, 0)
        watchdog.join(timeout=1.0)
        os.close(write_fd)
        os.close(read_fd)


def _wake(write_fd: int, signum: int) -> None:
    with contextlib.suppress(OSError):
        os.write(write_fd, bytes([signum & 0xFF]))


def _watch(read_fd: int, done: threading.Event, grace_s: float) -> None:
    while not done.is_set():
        try:
            data = os.read(read_fd, 64)  # blocks without the GIL until a signal (or the end) arrives
        except OSError:
            return
        stops = [s for s in data if s in EXIT_CODES]
        if not data or done.is_set():
            return
        if not stops:
            continue  # another signal with a Python handler
        if not _requested:
            _requested.append(stops[0])
        if done.wait(grace_s):
            return  # the run unwound in time: the main thread reports and exits
        with _exit_lock:
            if done.is_set():
                return
            _force_exit(_requested[0])


def _force_exit(signum: int) -> None:
    """What the unwinding would have done, done here: nothing left behind, one line, the exit code."""
    for path, folder in list(_temporaries.items()):
        if folder:
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
    _kill_children()
    for clean_up in list(_after_children.values()):
        with contextlib.suppress(Exception):
            clean_up()
    # os.write, not sys.stderr: the main thread may hold the stream's lock.
    with contextlib.suppress(OSError):
        os.write(2, f"segedge: error: {MESSAGES[signal.Signals(signum)]}\n".encode())
    os._exit(EXIT_CODES[signal.Signals(signum)])


def _kill_children() -> None:
    try:
        import psutil

        children = psutil.Process().children(recursive=True)
    except Exception:  # noqa: BLE001 - best effort on the way out; psutil missing or the table unreadable
        return
    for child in children:
        with contextlib.suppress(Exception):
            child.kill()
    with contextlib.suppress(Exception):
        psutil.wait_procs(children, timeout=0.3)
