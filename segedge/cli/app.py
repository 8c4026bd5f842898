"""The Typer application and its consoles (the options every command shares: `segedge.cli.options`).

Data goes to stdout (`out`), messages to stderr (`err`): `segedge bench --json | jq` works.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from runtimes.errors import UsageError
from segedge import __version__

# Piped or logged output has no terminal width; rich would then cut tables at 80 columns and
# abbreviate every cell. $COLUMNS still wins. soft_wrap: a line (a path, an error) is never broken
# into two, so it can be copied and grepped.
_PIPED_WIDTH = 200
out = Console(highlight=False, soft_wrap=True,
              width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else _PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True,
              width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else _PIPED_WIDTH)

app = typer.Typer(
    name="segedge",
    help="Semantic-segmentation networks from PyTorch to a verified, fast ONNX file and an app-ready predictor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        out.print(f"segedge {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """build -> export -> simplify -> quantize -> verify -> bench -> predict."""


Result = TypeVar("Result")


def with_progress(what: str, work: Callable[[Callable[[str], None]], Result]) -> Result:
    """Run a library function, showing its progress messages on stderr while it works.

    A progress message marks a new stage: none starts after a Ctrl-C that C code swallowed.
    """
    from runtimes.guards.interrupts import check_interrupted

    start = time.perf_counter()
    log = os.environ.get("SEGEDGE_LOG_PROGRESS") == "1"  # a line per stage with its time: for logs and timing

    def progress(message: str) -> None:
        check_interrupted()
        status.update(message)
        if log:
            err.print(f"[{time.perf_counter() - start:7.1f} s] {message}", markup=False)

    with err.status(what) as status:
        return work(progress)


def print_json(result: Any) -> None:
    """A result's `to_dict()` as JSON on stdout, for `--json`."""
    out.print_json(json.dumps(result.to_dict()))


def probe_if_isolated(isolate: bool, model: Path, provider: str = "cpu", input_size: tuple[int, int] | None = None) -> None:
    """With --isolate, refuse `model` unless it survives loading and one run in a limited child."""
    if not isolate:
        return
    from runtimes.guards.isolate import probe_model

    probe_model(model, getattr(provider, "value", provider), input_size or (64, 64))


def require_torch(verb: str) -> None:
    """Commands that build PyTorch models need the `export` extra; say so instead of a traceback."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UsageError(f"`segedge {verb}` needs PyTorch: pip install 'segedge[export]'")
