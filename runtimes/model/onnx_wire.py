"""Reading the protobuf wire format of an ONNX file without the `onnx` package (the runtime install lacks it).

Just enough of protobuf to walk a ModelProto: varints, length-delimited fields as memoryviews
into the (memory-mapped) file, so tensors' raw bytes are skipped over, never copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class WireError(ValueError):
    pass


def varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value) for one message; value is int or memoryview."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = varint(buf, pos)
            if pos + size > len(buf):
                raise WireError("field runs past the end of the message")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise WireError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise WireError("truncated field")
        yield number, wire, value


def sub(message: Iterable[tuple[int, int, int | memoryview]], numbers: tuple[int, ...]) -> Iterator[memoryview]:
    return (v for n, w, v in message if n in numbers and w == 2 and isinstance(v, memoryview))


def text(value: int | memoryview) -> str:
    return bytes(value).decode("utf-8", "replace") if isinstance(value, memoryview) else str(value)
