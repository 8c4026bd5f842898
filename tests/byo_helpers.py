"""Inputs for the tests of models from other libraries (test_byo_models.py, test_foreign_libraries.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segedge.data.shapes import ShapesConfig, write_shapes_dataset

IMAGENET = ("--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225")
# Images whose sides are not multiples of 32 (nor of 16), the smallest image, and a 16-bit one.
ODD_SIZES = {"photo.png": (77, 101), "dot.png": (1, 1), "deep.png": (45, 30)}


def labelled_folder(root: Path) -> Path:
    """A VOC-layout folder of shapes (4 classes), 72 x 88 images: calibration and labels."""
    return write_shapes_dataset(root, ShapesConfig(train=12, val=6, size=(72, 88), seed=3, version=1))


def odd_images(folder: Path) -> dict[str, Path]:
    """The ODD_SIZES images: RGB noise, one black pixel, and a 16-bit greyscale gradient."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    images = {
        "photo.png": Image.fromarray(rng.integers(0, 256, (77, 101, 3), dtype=np.uint8)),
        "dot.png": Image.fromarray(np.zeros((1, 1, 3), np.uint8)),
        "deep.png": Image.fromarray(np.linspace(0, 65535, 45 * 30).reshape(45, 30).astype(np.uint16)),
    }
    paths = {}
    for name, image in images.items():
        image.save(folder / name)
        paths[name] = folder / name
    return paths


def mask_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as mask:
        return mask.height, mask.width
