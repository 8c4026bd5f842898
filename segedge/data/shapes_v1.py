"""Version 1 of the shapes data: circles, squares and triangles on smooth colour noise with faint stripes.

One to three whole shapes of random size (radius 18% to 32% of the short side), rotation and
colour, apart from each other; surfaces one colour lit by a gradient. Kept as it was so that the
recipes measured on it (`segedge.train.recipe.SMALL`, `FULL`) still make the same weights.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from runtimes.measure.metrics import IGNORE_INDEX

CLASSES: tuple[str, ...] = ("background", "circle", "square", "triangle")
SUPERSAMPLE = 4  # shapes are drawn 4x larger, then averaged down: anti-aliased edges


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
