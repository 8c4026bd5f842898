"""`segedge models`: the zoo."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from segedge.cli.app import app, out, require_torch


@app.command("models")
def models_command(
    as_json: bool = typer.Option(False, "--json", help="Print the zoo as JSON on stdout."),
) -> None:
    """List the model zoo: name, aliases, family, default classes, input size, parameters."""
    require_torch("models")
    from segedge.models.info import zoo_rows

    rows = zoo_rows()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="segedge model zoo")
    for column in ("name", "aliases", "family", "classes", "input", "params", "reference"):
        table.add_column(column, justify="right" if column in ("classes", "params", "reference") else "left")
    for row in rows:
        reference = f"{row['reference_params'] / 1e6:.2f}M" if row["reference_params"] else "-"
        table.add_row(
            row["name"], ", ".join(row["aliases"]) or "-", row["family"], str(row["num_classes"]),
            "x".join(map(str, row["input_size"])), f"{row['params'] / 1e6:.2f}M", reference,
        )
    out.print(table)
