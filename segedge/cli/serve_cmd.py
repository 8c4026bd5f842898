"""`segedge serve`: an exported web folder on 127.0.0.1, cross-origin isolated so that WASM threads are on."""

from __future__ import annotations

from pathlib import Path

import typer

from exporters.targets.web_files.serve import make_server
from runtimes.errors import OutputError, UsageError
from runtimes.model.web_folder import is_web_folder
from segedge.cli.app import app, err


@app.command("serve")
def serve_command(
    folder: Path = typer.Argument(..., help="A folder written by `segedge export ... --target web`."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)."),
) -> None:
    """Serve a web export on http://127.0.0.1:PORT/ with the COOP/COEP headers its WASM threads need (Ctrl-C stops)."""
    if not is_web_folder(folder):
        raise UsageError(f"{folder} is not a folder written by `segedge export --target web` (no segedge-web.json)")
    try:
        server = make_server(folder, port)
    except OSError as exc:
        raise OutputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    err.print(f"serving {folder} on http://127.0.0.1:{server.server_port}/ (cross-origin isolated; Ctrl-C stops)",
              markup=False, highlight=False)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
