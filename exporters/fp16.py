"""fp32 -> fp16 with ONNX Runtime's own float16 converter.

Inputs and outputs stay float32 (`keep_io_types`): apps feed and read the same arrays as for the
fp32 file, and the casts sit inside the graph. Resize keeps its float32 scales (the converter's
rule for Resize's input 2; sizes are int64 anyway), and ops the converter knows to be unsafe in
fp16 stay float32 (its default block list). Whether the result's outputs are finite and agree
with fp32 is measured by the caller on images (`segedge.quantize.run`): conversion alone proves
nothing about accuracy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import onnx
from onnxruntime.transformers.float16 import (
    DEFAULT_OP_BLOCK_LIST,
    convert_float_to_float16,
)

from runtimes.errors import ExportError
from runtimes.backends.messages import runtime_reason

from .card_io import embed_card, read_card_from_proto
from .graph_order import sort_topologically
from .model_file import load_model, save_model


def fp16_model(model: onnx.ModelProto, block_nodes: Sequence[str] = ()) -> onnx.ModelProto:
    """An fp16 copy of `model` (float32 inputs and outputs); `block_nodes` stay float32."""
    missing = sorted(set(block_nodes) - {n.name for n in model.graph.node})
    if missing:
        raise ExportError(f"no node named {', '.join(missing)} in the model")
    try:
        converted = convert_float_to_float16(
            model,
            keep_io_types=True,
            op_block_list=DEFAULT_OP_BLOCK_LIST,
            node_block_list=list(block_nodes),
        )
    except Exception as exc:  # the converter raises plain Exceptions and onnx errors alike
        raise ExportError(f"fp16 conversion failed: {runtime_reason(exc)}") from exc
    # The converter appends the Casts of the float32 inputs after the nodes that read them.
    return sort_topologically(converted)


def convert_fp16(source: str | os.PathLike[str], target: str | os.PathLike[str], block_nodes: Sequence[str] = ()) -> Path:
    """Convert the ONNX file `source` to fp16 at `target` (atomically); its card says fp16."""
    model = load_model(source)
    converted = fp16_model(model, block_nodes)
    card = read_card_from_proto(converted)
    if card is not None:
        embed_card(converted, card.with_overrides(precision="fp16", calibration={}, parity={}))
    save_model(converted, target)
    return Path(target)
