"""The model card inside a LiteRT (.tflite) file: an entry of the flatbuffer's `metadata` list.

A .tflite model has a list of named metadata entries, each pointing at one of its buffers (LiteRT's
own `min_runtime_version` is one; TFLite Support's `TFLITE_METADATA` another). segedge adds
`segedge_card` (the card's JSON) and `segedge_target` (the export's target record), so `info` and
the Predictor read them back with no file beside the model. The interpreter ignores entries it does
not know. Reading and writing use the flatbuffer schema that `ai-edge-litert` ships (no torch, no
TensorFlow).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..model.card import ModelCard
from ..errors import CardError, ModelFileError, UsageError

CARD_KEY = "segedge_card"
TARGET_KEY = "segedge_target"
INSTALL = "pip install 'segedge[litert]'"


def schema() -> Any:
    """ai-edge-litert's generated flatbuffer classes for the .tflite schema."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise UsageError(f"LiteRT (.tflite) files need ai-edge-litert: {INSTALL}") from None
    return schema_py_generated


def read_entries(content: bytes) -> dict[str, bytes]:
    """The named metadata entries of a .tflite flatbuffer, as bytes."""
    fb = schema()
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ModelFileError("not a LiteRT / TFLite flatbuffer (no TFL3 identifier)")
    model = fb.Model.GetRootAs(content, 0)
    entries: dict[str, bytes] = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        name = (entry.Name() or b"").decode(errors="replace")
        buffer = model.Buffers(entry.Buffer())
        if buffer.Offset() > 1:  # data stored after the flatbuffer (files over 2 GB)
            entries[name] = bytes(content[buffer.Offset(): buffer.Offset() + buffer.Size()])
        elif not buffer.DataIsNone():
            entries[name] = buffer.DataAsNumpy().tobytes()
    return entries


def read_card(content: bytes) -> tuple[ModelCard | None, dict[str, Any] | None]:
    """The segedge card and target record stored in a .tflite file (None where absent)."""
    entries = read_entries(content)
    try:
        card = ModelCard.from_json(entries[CARD_KEY]) if CARD_KEY in entries else None
    except CardError as exc:
        raise CardError(f"the file's segedge card is not valid: {exc}") from None
    target = json.loads(entries[TARGET_KEY]) if TARGET_KEY in entries else None
    return card, target


def with_entries(content: bytes, entries: Mapping[str, bytes]) -> bytes:
    """`content` with `entries` added to (or replacing those of the same name in) its metadata list."""
    import flatbuffers

    fb = schema()
    model = fb.ModelT.InitFromPackedBuf(bytearray(content), 0)
    if len(content) >= 2**31 - 2**20:
        raise ModelFileError("the model is over 2 GB (its weights after the flatbuffer): no card added")
    for buffer in model.buffers or ():
        # ai-edge-quantizer writes weights after the flatbuffer (offset and size); repacked, they go inline.
        if getattr(buffer, "offset", 0) > 1:
            buffer.data = np.frombuffer(content[buffer.offset : buffer.offset + buffer.size], dtype=np.uint8)
            buffer.offset, buffer.size = 0, 0
    kept = [m for m in (model.metadata or []) if (m.name or b"").decode() not in entries]
    for name, data in entries.items():
        buffer = fb.BufferT()
        buffer.data = np.frombuffer(data, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = fb.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        kept.append(entry)
    model.metadata = kept
    builder = flatbuffers.Builder(len(content) + sum(len(d) for d in entries.values()) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
