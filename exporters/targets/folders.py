"""Artefacts that are folders (a web folder, a Core ML .mlpackage): checked before work, moved into place whole.

A folder is built in a work folder and copied beside its final path under a temporary name, then
renamed onto it; an earlier folder there is renamed aside first and removed after, so the final
path holds either the old folder or the new one, never a mix. An existing folder segedge did not
write (`is_ours` says) is refused unless `overwrite`, and no output folder may hold an input.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from runtimes.errors import OutputError, UsageError
from runtimes.guards.fileio import ensure_writable
from runtimes.guards.interrupts import temporary
from runtimes.guards.outputs import Input


def check_folder_output(folder: Path, inputs: Iterable[Input], is_ours: Callable[[Path], bool], *,
                        overwrite: bool) -> Path:
    """Refuse `folder` as an output in one line when it is a file, holds an input, or is someone else's."""
    if folder.is_file():
        raise UsageError(f"the output {folder} is a file; a folder is written there")
    resolved = Path(os.path.realpath(folder))
    for what, path in inputs:
        inside = Path(os.path.realpath(path))
        if inside == resolved or resolved in inside.parents:
            raise UsageError(f"the output folder {folder} holds {what} ({path}); choose another output path")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite and not is_ours(folder):
        raise UsageError(f"{folder} exists and was not written by segedge; pass --overwrite to replace it, "
                         "or choose another output path")
    ensure_writable(folder.parent / f"{folder.name}.probe")
    return folder


def place_folder(staged: Path, final: Path) -> None:
    """Copy the finished folder `staged` to `final`, replacing what was there in one rename."""
    parent = final.parent if str(final.parent) else Path(".")
    token = secrets.token_hex(4)
    incoming, outgoing = parent / f".{final.name}.{token}.tmp", parent / f".{final.name}.{token}.old"
    with temporary(incoming, folder=True), temporary(outgoing, folder=True):
        try:
            shutil.copytree(staged, incoming)
            if final.exists():
                os.replace(final, outgoing)
            os.replace(incoming, final)
        except OSError as exc:
            raise OutputError(f"cannot write {final}: {exc.strerror or exc}") from None
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
            shutil.rmtree(outgoing, ignore_errors=True)
