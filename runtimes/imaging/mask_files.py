"""Writing a prediction's files (label PNGs, probability arrays): atomically, marked as segedge's.

What `segedge predict` writes; an app that only calls the `Predictor` never imports it (nor the
file-safety machinery it needs: `runtimes.guards.fileio`, `runtimes.guards.outputs`, `runtimes.guards.interrupts`).
"""

from __future__ import annotations

import io
import os
import zlib

import numpy as np
from PIL import Image

from ..errors import OutputError
from ..guards.fileio import atomic_path, write_bytes_atomic
from ..guards.outputs import png_info


# zlib level 1, not Pillow's 6: on a 1280 x 960 mask (palette PNG) 2.3 ms of CPU instead of 8.3 for a
# file 1.5 x larger (25 kB, not 17 kB); on an overlay 96 ms instead of 388 for 1.12 x the bytes.
# On a folder that CPU time is taken from the model's cores (benchmarks/results/throughput.md).
PNG_COMPRESS_LEVEL = 1
# A label map is long runs of one index: zlib's run-length strategy finds them as fast as level 1 and
# writes files half its size, smaller than level 6's (LR-ASPP masks of 12 demo images at 1280 x 960,
# medians: 9.4 kB in 2.1 ms; level 1 20.1 kB in 2.1 ms; level 6 11.8 kB in 14.3 ms). Photos
# (overlays) have no such runs and keep zlib's default strategy.
PALETTE_STRATEGY = zlib.Z_RLE


def save_png(image: Image.Image, path: str | os.PathLike[str]) -> None:
    """Write `image` as PNG, atomically, marked as segedge's (a later run may replace it: `runtimes.guards.outputs`)."""
    buffer = io.BytesIO()
    strategy = PALETTE_STRATEGY if image.mode == "P" else zlib.Z_DEFAULT_STRATEGY
    image.save(buffer, format="PNG", pnginfo=png_info(), compress_level=PNG_COMPRESS_LEVEL, compress_type=strategy)
    write_bytes_atomic(path, buffer.getvalue())


def save_npy(array: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write `array` as .npy, atomically."""
    with atomic_path(path, suffix=".npy") as tmp:
        try:
            np.save(tmp, array)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
