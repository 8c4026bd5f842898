"""Version 3 of the shapes data: version 2's objects, each class in its own band of hues.

Version 2 let only the outline say the class. Trained from scratch on 2 CPU cores, no recipe got
near mIoU 0.80 within the minutes a demo may take (LR-ASPP 0.434 after 1,500 steps, DeepLab v3+
0.19 after 300): telling a 10 px triangle from a square from scratch takes far longer than that.
Here every object class has a hue band of its own (60 degrees apart, +-12 around its centre) at
a saturation of 0.5 or more, and backgrounds are nearly grey (saturation 0.2 at most), so a model
learns in minutes what a pixel is and spends the rest of its steps on where the edges are.

What makes a bad int8 show is kept: six classes, one to four objects over a 2.5x range of sizes,
thin rings and lines (3 px and up: at 96 px a 2 px line is a blur after the stride-4 decoders), the
stripes and checkerboards of version 2 on half the backgrounds, and 40% of the objects patterned in
two shades of their hue; neighbouring hue bands are 36 degrees apart at their closest, where
quantized colour features blur first.
"""

from __future__ import annotations

import colorsys

import numpy as np

from segedge.data.shapes_v2 import BACKGROUND_PATTERN, CLASSES, PLAIN_SURFACES, Thinness, _checker, _noise, _stripes, compose

__all__ = ["CLASSES", "draw_sample"]

THIN = Thinness(ring_band=(0.25, 0.45), line_width=(0.03, 0.06), min_px=3.0)
HUE_STEP, HUE_JITTER = 1 / 6, 1 / 30  # class k's hues: (k - 1) / 6 +- 12 degrees
SATURATION = (0.5, 1.0)  # of objects; backgrounds stay at or under BACKGROUND_SATURATION
VALUE = (0.45, 1.0)
BACKGROUND_SATURATION = 0.2


def draw_sample(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    return compose(rng, size, _grey_background, lambda rng, cls, image, alpha: _class_surface(rng, cls, h, w), THIN)


def _class_colour(rng: np.random.Generator, cls: int, value: float | None = None) -> np.ndarray:
    hue = ((cls - 1) * HUE_STEP + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0
    v = rng.uniform(*VALUE) if value is None else value
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(*SATURATION), v)) * 255.0


def _class_surface(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """H x W x 3: the class's colour lit by a gradient, or two shades of its hue in a pattern."""
    if rng.uniform() < PLAIN_SURFACES:
        angle, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0, 30)
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        light = (xx * np.cos(angle) + yy * np.sin(angle) - 0.5) * strength
        return _class_colour(rng, cls) + light[..., None]
    kind = rng.uniform()
    pattern = _stripes(rng, h, w) if kind < 0.5 else _checker(rng, h, w)
    dark, light_value = sorted(rng.uniform(*VALUE, 2))
    a, b = _class_colour(rng, cls, dark), _class_colour(rng, cls, max(light_value, dark + 0.2))
    return a * (1 - pattern[..., None]) + b * pattern[..., None]


def _grey_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Version 2's background (smooth noise, half the time stripes or a checkerboard), nearly grey."""
    image = _noise(rng, h, w)
    if rng.uniform() < 0.5:
        pattern = _stripes(rng, h, w) if rng.uniform() < 0.5 else _checker(rng, h, w)
        image = image + rng.uniform(*BACKGROUND_PATTERN) * (pattern[..., None] - 0.5)
    grey = image.mean(axis=-1, keepdims=True)
    keep = rng.uniform(0, BACKGROUND_SATURATION)  # how much of the colour is left: saturation 0.2 at most
    return grey + (image - grey) * keep
