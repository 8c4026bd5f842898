"""A small, reproducible segmentation dataset: shapes on textured backgrounds, in VOC's layout.

    root/JPEGImages/<id>.jpg                     photo-like RGB image (JPEG, quality 90)
    root/SegmentationClass/<id>.png              palette PNG of class indices (VOC colours)
    root/ImageSets/Segmentation/{train,val}.txt  the ids of each split

Classes: background, circle, square, triangle. Each image holds one to three whole shapes of
random size, rotation and colour, apart from each other, on a background of smooth colour noise
and faint stripes; colour says nothing about the class, only shape does. Edges are anti-aliased and the image slightly blurred and noisy, so it looks like a photo
to a quantizer; pixels that a shape covers only partly are labelled 255 (ignored), as VOC marks
its object boundaries. Image `i` of a split depends only on (seed, split, i): the same seed gives
the same files, whatever the counts.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from runtimes.fileio import write_bytes_atomic, write_text_atomic
from runtimes.palette import voc_palette

CLASSES: tuple[str, ...] = ("background", "circle", "square", "triangle")
IGNORE_INDEX = 255
SUPERSAMPLE = 4  # shapes are drawn 4x larger, then averaged down: anti-aliased edges
_SPLIT_CODES = {"train": 1, "val": 2}


@dataclass(frozen=True)
class ShapesConfig:
    train: int = 400
    val: int = 100
    size: tuple[int, int] = (96, 96)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train < 0 or self.val < 0:
            raise ValueError("image counts must be >= 0")
        if min(self.size) < 32:
            raise ValueError(f"images must be at least 32x32, got {self.size}")


def write_shapes_dataset(root: str | Path, config: ShapesConfig = ShapesConfig()) -> Path:
    """Write the dataset under `root` (created if needed); returns `root`."""
    root = Path(root)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    palette = [c for rgb in voc_palette(256) for c in rgb]
    for split, count in (("train", config.train), ("val", config.val)):
        ids = []
        for index, (image, labels) in enumerate(generate(split, count, config.size, config.seed)):
            sample_id = f"{split}_{index:05d}"
            write_bytes_atomic(root / "JPEGImages" / f"{sample_id}.jpg", _encode(Image.fromarray(image), "JPEG", quality=90))
            mask = Image.fromarray(labels, mode="P")
            mask.putpalette(palette)
            write_bytes_atomic(root / "SegmentationClass" / f"{sample_id}.png", _encode(mask, "PNG"))
            ids.append(sample_id)
        write_text_atomic(root / "ImageSets" / "Segmentation" / f"{split}.txt", "".join(f"{i}\n" for i in ids))
    return root


def generate(split: str, count: int, size: tuple[int, int], seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(H x W x 3 uint8 image, H x W uint8 labels) pairs of one split."""
    for index in range(count):
        rng = np.random.default_rng([seed, _SPLIT_CODES[split], index])
        yield draw_sample(rng, size)


def draw_sample(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    image = _texture(rng, h, w)
    labels = np.zeros((h, w), np.uint8)
    coverage = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(1, len(CLASSES)))
        alpha = _placed_shape(rng, cls, coverage)
        if alpha is None:
            continue
        image = image * (1 - alpha[..., None]) + _paint(rng, h, w) * alpha[..., None]
        labels[alpha >= 0.5] = cls
        coverage += alpha
    labels[(coverage > 0.2) & (coverage < 0.8)] = IGNORE_INDEX
    photo = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    noisy = np.asarray(photo, np.float32) + rng.normal(0, 4, (h, w, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8), labels


def _placed_shape(rng: np.random.Generator, cls: int, coverage: np.ndarray, tries: int = 4) -> np.ndarray | None:
    """A shape that keeps a pixel clear of those already drawn, or None when none fits."""
    h, w = coverage.shape
    taken = np.asarray(Image.fromarray(coverage > 0).filter(ImageFilter.MaxFilter(3)))
    for _ in range(tries):
        alpha = _shape_alpha(rng, cls, h, w)
        if not np.any(taken & (alpha > 0)):
            return alpha
    return None


def _shape_alpha(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """Coverage in 0..1 of one shape of class `cls`, drawn at SUPERSAMPLE x and averaged down."""
    s = SUPERSAMPLE
    radius = rng.uniform(0.18, 0.32) * min(h, w)
    cy, cx = rng.uniform(radius + 1, h - radius - 1), rng.uniform(radius + 1, w - radius - 1)
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    if CLASSES[cls] == "circle":
        draw.ellipse([(cx - radius) * s, (cy - radius) * s, (cx + radius) * s, (cy + radius) * s], fill=255)
    else:
        corners = 4 if CLASSES[cls] == "square" else 3
        start = rng.uniform(0, 2 * math.pi)
        points = [
            ((cx + radius * math.cos(start + 2 * math.pi * k / corners)) * s,
             (cy + radius * math.sin(start + 2 * math.pi * k / corners)) * s)
            for k in range(corners)
        ]
        draw.polygon(points, fill=255)
    big = np.asarray(canvas, np.float32) / 255.0
    return big.reshape(h, s, w, s).mean(axis=(1, 3))


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """H x W x 3 float pixels: two random colours mixed by smooth noise, plus faint stripes."""
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    cells = int(rng.integers(2, 7))
    coarse = Image.fromarray((rng.uniform(0, 255, (cells, cells))).astype(np.uint8))
    mix = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), np.float32)[..., None] / 255.0
    angle, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    return a * (1 - mix) + b * mix + rng.uniform(0, 25) * stripes[..., None]


def _paint(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """H x W x 3 float pixels of a shape's surface: one random colour, lit by a linear gradient."""
    colour = rng.uniform(0, 255, 3)
    angle, strength = rng.uniform(0, 2 * math.pi), rng.uniform(0, 40)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = (xx * math.cos(angle) + yy * math.sin(angle) - 0.5) * strength
    return colour + light[..., None]


def _encode(image: Image.Image, fmt: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()
