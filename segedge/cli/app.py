"""The Typer application, its consoles, and the option parsers every command shares.

Data goes to stdout (`out`), messages to stderr (`err`): `segedge bench --json | jq` works.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from runtimes.errors import UsageError

from .. import __version__

# Piped or logged output has no terminal width; rich would then cut tables at 80 columns and
# abbreviate every cell. $COLUMNS still wins.
_PIPED_WIDTH = 200
out = Console(highlight=False, soft_wrap=True,
              width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else _PIPED_WIDTH)
err = Console(stderr=True, highlight=False)

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


def parse_size(text: str) -> tuple[int, int]:
    """'512x384' -> (512, 384) as H x W; '512' -> (512, 512)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"size {text!r} must look like HxW, e.g. 512x512") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not all(1 <= v <= 16384 for v in values):
        raise UsageError(f"size {text!r} must be HxW with 1 <= H, W <= 16384")
    return values[0], values[1]


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = [parse_size(p) for p in text.split(",") if p.strip()]
    if not sizes:
        raise UsageError(f"sizes {text!r} must be comma-separated HxW, e.g. 512x512,384x640")
    return sizes


def parse_triple(text: str, what: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{what} {text!r} must be three numbers, e.g. 0.485,0.456,0.406") from None
    if len(values) != 3:
        raise UsageError(f"{what} {text!r} must be three comma-separated numbers")
    return values  # type: ignore[return-value]


def parse_list(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(p.strip() for p in text.split(",") if p.strip())


def isolate_option():
    return typer.Option(
        False, "--isolate",
        help="For untrusted models: load the file and run it once in a child process under memory and "
             "time limits first, so that a crash or an out-of-memory abort in the runtime becomes an error.",
    )


def probe_if_isolated(isolate: bool, model: Path, provider: str = "cpu", input_size: tuple[int, int] | None = None) -> None:
    """With --isolate, refuse `model` unless it survives loading and one run in a limited child."""
    if not isolate:
        return
    from runtimes.isolate import probe_model

    probe_model(model, getattr(provider, "value", provider), input_size or (64, 64))


def require_torch(verb: str) -> None:
    """Commands that build PyTorch models need the `export` extra; say so instead of a traceback."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UsageError(f"`segedge {verb}` needs PyTorch: pip install 'segedge[export]'")
