"""A small, reproducible segmentation dataset of shapes on textured backgrounds, in VOC's layout.

    root/JPEGImages/<id>.jpg                     photo-like RGB image (JPEG, quality 90)
    root/SegmentationClass/<id>.png              palette PNG of class indices (VOC colours)
    root/ImageSets/Segmentation/{train,val}.txt  the ids of each split

Two versions of one idea, both kept so that a recipe measured on one keeps making the same weights:

- version 2 (the default; `segedge.data.shapes_v2`): background, circle, square, triangle, ring,
  line; one to four objects whose size spans 2.5x, thin rings and lines (2 px and up), textured
  backgrounds and surfaces. What the demo weights (`--weights demo`) are trained on.
- version 1 (`segedge.data.shapes_v1`): background, circle, square, triangle on smooth colour
  noise; what the tests' `SMALL` U-Net and the precision benchmark's `FULL` one were measured on.

Colour never says the class, only the outline does. Edges are anti-aliased and images blurred and
noisy, so they look like photos to a quantizer; pixels that an object covers only partly are
labelled 255 (ignored), as VOC marks its object boundaries. Image `i` of a split depends only on
(version, seed, split, i): the same seed gives the same files, whatever the counts.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from runtimes.guards.fileio import write_bytes_atomic, write_text_atomic
from runtimes.imaging.palette import voc_palette
from runtimes.measure.metrics import IGNORE_INDEX
from segedge.data import shapes_v1, shapes_v2, shapes_v3

VERSIONS = {1: shapes_v1, 2: shapes_v2, 3: shapes_v3}
LATEST = 3
CLASSES: tuple[str, ...] = shapes_v3.CLASSES  # the latest version's
_SPLIT_CODES = {"train": 1, "val": 2}


@dataclass(frozen=True)
class ShapesConfig:
    train: int = 400
    val: int = 100
    size: tuple[int, int] = (96, 96)
    seed: int = 0
    version: int = LATEST

    def __post_init__(self) -> None:
        if self.train < 0 or self.val < 0:
            raise ValueError("image counts must be >= 0")
        if min(self.size) < 32:
            raise ValueError(f"images must be at least 32x32, got {self.size}")
        if self.version not in VERSIONS:
            raise ValueError(f"version must be one of {sorted(VERSIONS)}, got {self.version}")

    @property
    def classes(self) -> tuple[str, ...]:
        return classes_of(self.version)


def classes_of(version: int) -> tuple[str, ...]:
    return VERSIONS[version].CLASSES


def write_shapes_dataset(root: str | Path, config: ShapesConfig = ShapesConfig()) -> Path:
    """Write the dataset under `root` (created if needed); returns `root`."""
    root = Path(root)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    palette = [c for rgb in voc_palette(256) for c in rgb]
    for split, count in (("train", config.train), ("val", config.val)):
        ids = []
        for index, (image, labels) in enumerate(generate(split, count, config.size, config.seed, config.version)):
            sample_id = f"{split}_{index:05d}"
            write_bytes_atomic(root / "JPEGImages" / f"{sample_id}.jpg", _encode(Image.fromarray(image), "JPEG", quality=90))
            mask = Image.fromarray(labels, mode="P")
            mask.putpalette(palette)
            write_bytes_atomic(root / "SegmentationClass" / f"{sample_id}.png", _encode(mask, "PNG"))
            ids.append(sample_id)
        write_text_atomic(root / "ImageSets" / "Segmentation" / f"{split}.txt", "".join(f"{i}\n" for i in ids))
    return root


def generate(split: str, count: int, size: tuple[int, int], seed: int,
             version: int = LATEST) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(H x W x 3 uint8 image, H x W uint8 labels) pairs of one split."""
    draw = VERSIONS[version].draw_sample
    for index in range(count):
        rng = np.random.default_rng([seed, _SPLIT_CODES[split], index])
        yield draw(rng, size)


def _encode(image: Image.Image, fmt: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()
