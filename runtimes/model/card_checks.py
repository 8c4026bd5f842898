"""Card options that contradict the model file are refused, not quietly ignored (issue 15's hostile suite).

`--output-name` naming an output the file does not have fell back to its first output, and
`--classes` naming fewer or more classes than the output has channels labelled pixels with
classes the card did not name: both ran and exited 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .card import ModelCard
from ..errors import UsageError
from .inspection import Inspection

_PER_CLASS = ("logits", "probabilities")  # output kinds with one channel per class


def check_overrides(path: Path, given: Mapping[str, Any], inspection: Inspection, stored: ModelCard | None) -> None:
    """Refuse, in one line, an override the file contradicts: an output it lacks, a class count it does not have.

    The class count is the output's channel dimension where the graph fixes it, else the stored card's.
    """
    names = [o.name for o in inspection.outputs]
    wanted = given.get("output_name")
    if wanted is not None and wanted not in names:
        raise UsageError(f"{path.name} has no output named {wanted!r} (its outputs: {', '.join(names)})")
    classes = given.get("classes")
    if classes is None or inspection.card.output_kind not in _PER_CLASS:
        return
    output = next((o for o in inspection.outputs if o.name == (wanted or inspection.card.output_name)),
                  inspection.outputs[0])
    channels = output.shape[3 if inspection.channels_last_output else 1] if len(output.shape) == 4 else None
    if not isinstance(channels, int) and stored is not None and stored.output_kind in _PER_CLASS:
        channels = stored.num_classes
    if isinstance(channels, int) and channels != len(classes):
        raise UsageError(f"{len(classes)} classes were named, but {path.name} outputs {channels} channels "
                         f"({output.name}): name one class per channel")
