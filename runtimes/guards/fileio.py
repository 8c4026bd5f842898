"""Atomic file writing: a file either appears whole under its final name, or not at all."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import OutputError
from .interrupts import check_interrupted, temporary

_UMASK_LOCK = threading.Lock()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; move it onto `target` on success.

    The temporary file lives beside the target so that `os.replace` is a same-filesystem rename.
    On any exception (KeyboardInterrupt included) the temporary file is removed and the previous
    content of `target`, if any, is left untouched.
    """
    target = Path(target)
    with temporary_file(target, suffix) as tmp:
        try:
            yield tmp
        except OSError as exc:  # the writer's own failure: a full disk, a quota, an I/O error
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
        # A Ctrl-C that C code swallowed while the file was made must not let it into place.
        check_interrupted()
        move_into_place(tmp, target)


@contextlib.contextmanager
def temporary_file(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A new empty temporary file beside `target`, removed when the block ends unless moved away.

    For a writer that must decide for itself when its file is whole (a video finalised by its
    trailer also after a Ctrl-C: `runtimes.stream.writers`); it calls `move_into_place`. A forced
    exit removes it (`runtimes.guards.interrupts.temporary`).
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"output path {target} is a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    tmp = _temporary_name(folder, target.name, suffix or ".tmp")
    with temporary(tmp):
        try:
            try:
                _create_exclusive(tmp)
            except OSError as exc:
                raise OutputError(f"cannot write to {folder}: {exc.strerror or exc}") from None
            yield tmp
        finally:
            _even_if_interrupted(tmp.unlink, missing_ok=True)


def move_into_place(tmp: Path, target: str | os.PathLike[str]) -> None:
    """Rename the finished temporary `tmp` onto `target`, with the mode a plain open() would give."""
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # the temporary file is 0600
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def work_folder(prefix: str) -> Iterator[Path]:
    """A private folder in $TMPDIR for intermediate files, removed however the block ends.

    Named before it is made, so that a Ctrl-C or SIGTERM at any moment finds it in the `finally`:
    `tempfile.TemporaryDirectory` arms its clean-up only after the folder exists, and a signal in
    between left `segedge-export-*` folders behind.
    """
    check_interrupted()  # a stage boundary: no new stage starts after a swallowed Ctrl-C
    path = Path(tempfile.gettempdir()) / f"{prefix}{secrets.token_hex(8)}"
    with temporary(path, folder=True):
        try:
            path.mkdir(mode=0o700)
            yield path
        finally:
            _even_if_interrupted(shutil.rmtree, path, ignore_errors=True)


def _even_if_interrupted(clean_up, *args, **kwargs) -> None:
    """Run a clean-up to the end: a Ctrl-C landing in it (a second one, or the first arriving just
    as the work finished) must not leave half a folder; the interrupt is raised again afterwards."""
    try:
        clean_up(*args, **kwargs)
    except KeyboardInterrupt:
        clean_up(*args, **kwargs)
        raise


def _temporary_name(folder: Path, name: str, suffix: str) -> Path:
    # Named before the file exists (unlike mkstemp, which returns the name only once the file is
    # there): a Ctrl-C at any moment after this finds it in the caller's `finally`.
    return folder / f".{name}.{secrets.token_hex(8)}{suffix}"


_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{16}(\.[A-Za-z0-9]+)?")  # what `_temporary_name` makes


def remove_temporaries(folders: Iterable[Path], endings: tuple[str, ...]) -> int:
    """Remove the temporaries `atomic_path` made in `folders` for files named ...`endings`; how many.

    For a process whose writers were killed before their own clean-up ran (SIGKILL, a lost node):
    only the parent knows where they wrote. A temporary is removed only when its name is exactly
    one `atomic_path` makes for such a file, so a user's own hidden files stay.
    """
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if match and match["name"].endswith(endings) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _create_exclusive(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def _umask() -> int:
    # os.umask can only be read by setting it, which races with other threads writing files;
    # Linux shows it in /proc. Elsewhere, set a strict mask for the moment it takes.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def ensure_writable(target: str | os.PathLike[str]) -> Path:
    """Fail early, before any long work, when `target` cannot be written.

    Proven by creating (and removing) a probe file in the target's folder: `os.access` says yes
    to root on a read-only mount. Folders made for the probe are removed again, so a refused
    request leaves nothing behind; `atomic_path` makes them when the file is really written.
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"output path {target} is a directory")
    folder = target.parent if str(target.parent) else Path(".")
    missing = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    probe = _temporary_name(folder, target.name, ".probe")
    with temporary(probe):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _create_exclusive(probe)
        except OSError as exc:
            raise OutputError(f"cannot write to {folder}: {exc.strerror or exc}") from None
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
            for made in missing:
                with contextlib.suppress(OSError):
                    made.rmdir()
    return target


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path`, for processes that share a cache (pytest-xdist workers).

    Without fcntl (Windows) there is no lock: concurrent first runs each do the work, with the same result.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
