"""Writing a prediction's files (label PNGs, probability arrays): atomically, marked as segedge's.

What `segedge predict` writes; an app that only calls the `Predictor` never imports it (nor the
file-safety machinery it needs: `runtimes.guards.fileio`, `runtimes.guards.outputs`, `runtimes.guards.interrupts`).
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from ..errors import OutputError
from ..guards.fileio import atomic_path, write_bytes_atomic
from ..guards.outputs import png_info


def save_png(image: Image.Image, path: str | os.PathLike[str]) -> None:
    """Write `image` as PNG, atomically, marked as segedge's (a later run may replace it: `runtimes.guards.outputs`)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info())
    write_bytes_atomic(path, buffer.getvalue())


def save_npy(array: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write `array` as .npy, atomically."""
    with atomic_path(path, suffix=".npy") as tmp:
        try:
            np.save(tmp, array)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
