"""Facts about the zoo computed from the code itself (parameter counts are never typed in)."""

from __future__ import annotations

import torch

from .registry import list_models


def count_params(name: str, **kwargs) -> int:
    """Parameters of a registered model, counted on the meta device (no memory, no init cost)."""
    from .registry import build_model

    with torch.device("meta"):
        model = build_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def zoo_rows() -> list[dict]:
    rows = []
    for spec in list_models():
        rows.append(
            {
                "name": spec.name,
                "aliases": list(spec.aliases),
                "family": spec.family,
                "paper": spec.paper,
                "num_classes": spec.num_classes,
                "input_size": list(spec.input_size),
                "size_divisor": spec.size_divisor,
                "params": count_params(spec.name),
                "reference_params": spec.reference_params,
                "reference_note": spec.reference_note,
            }
        )
    return rows


def fidelity_table() -> str:
    """The README's model table: parameters counted from the code beside the reference count."""
    lines = [
        "| model | aliases | family | classes | params (segedge) | reference | note |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in zoo_rows():
        ref = row["reference_params"]
        diff = f" ({(row['params'] - ref) / ref:+.1%})" if ref else ""
        lines.append(
            f"| `{row['name']}` | {', '.join(f'`{a}`' for a in row['aliases']) or '-'} | {row['family']} | "
            f"{row['num_classes']} | {row['params']:,} | {f'{ref:,}{diff}' if ref else '-'} | {row['reference_note'] or ''} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(fidelity_table())
