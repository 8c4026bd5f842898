"""Version 2 of the shapes data, hard enough for a bad int8 to show: shapes, rings and lines on textures.

Classes: background, circle, square, triangle, ring, line. Each image holds one to four objects,
apart from each other, whose size spans a factor of 2.5 (radius 12% to 30% of the short side): a
model must work at several scales. Rings and lines are thin (a band of 2 px or more; lines 2% to
5% of the side wide), where a quantized model's small logit errors flip pixels first. Half the
backgrounds carry stripes or a checkerboard over smooth colour noise, and 40% of the objects a
two-colour pattern (stripes, checkerboard, grain), all in random colours, so neither colour nor
texture says the class, only the outline does; stripes also look like lines at a glance. An
object's colour differs from its background's by MIN_CONTRAST: one that cannot be seen would be
guessed, capping every model's mIoU without telling precisions apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from runtimes.measure.metrics import IGNORE_INDEX

CLASSES: tuple[str, ...] = ("background", "circle", "square", "triangle", "ring", "line")
SUPERSAMPLE = 4  # objects are drawn 4x larger, then averaged down: anti-aliased edges
MAX_OBJECTS = 4
RADIUS_RANGE = (0.12, 0.30)  # of the short side, drawn log-uniformly: scale changes of 2.5x
MIN_CONTRAST = 60.0  # RGB distance between an object's mean colour and its background's
PLAIN_SURFACES = 0.6  # share of objects painted one lit colour; the others carry a two-colour pattern
PATTERN_CONTRAST = (30.0, 80.0)  # RGB distance between a patterned surface's two colours
BACKGROUND_PATTERN = (10.0, 40.0)  # amplitude of the stripes or checkerboard over half the backgrounds


@dataclass(frozen=True)
class Thinness:
    """How thin rings and lines are drawn: band and width as shares of the radius / side, in px at least."""

    ring_band: tuple[float, float] = (0.2, 0.4)  # of the radius
    line_width: tuple[float, float] = (0.02, 0.05)  # of the short side
    min_px: float = 2.0


THIN = Thinness()


def draw_sample(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return compose(rng, size, _background, lambda rng, cls, image, alpha: _visible_surface(rng, image, alpha), THIN)


Background = Callable[[np.random.Generator, int, int], np.ndarray]
Surface = Callable[[np.random.Generator, int, np.ndarray, np.ndarray], np.ndarray]  # (rng, class, image, alpha)


def compose(rng: np.random.Generator, size: tuple[int, int], background: Background, surface: Surface,
            thin: Thinness) -> tuple[np.ndarray, np.ndarray]:
    """One image and its labels: objects placed apart on a background, then blurred and noisy like a photo.

    Versions 2 and 3 differ only in `background`, `surface` (what an object of a class looks like)
    and `thin`; the draws happen in this order, so each version's images depend on its seed alone.
    """
    h, w = size
    image = background(rng, h, w)
    labels = np.zeros((h, w), np.uint8)
    coverage = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        cls = int(rng.integers(1, len(CLASSES)))
        alpha = _placed_object(rng, cls, coverage, thin=thin)
        if alpha is None:
            continue
        image = image * (1 - alpha[..., None]) + surface(rng, cls, image, alpha) * alpha[..., None]
        labels[alpha >= 0.5] = cls
        coverage += alpha
    labels[(coverage > 0.2) & (coverage < 0.8)] = IGNORE_INDEX
    blur = float(rng.uniform(0.3, 0.9))
    photo = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
    noisy = np.asarray(photo, np.float32) + rng.normal(0, rng.uniform(2, 7), (h, w, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8), labels


def _placed_object(rng: np.random.Generator, cls: int, coverage: np.ndarray, tries: int = 6,
                   thin: Thinness = THIN) -> np.ndarray | None:
    """An object that keeps a pixel clear of those already drawn, or None when none fits."""
    h, w = coverage.shape
    taken = np.asarray(Image.fromarray(coverage > 0).filter(ImageFilter.MaxFilter(3)))
    for _ in range(tries):
        alpha = _object_alpha(rng, cls, h, w, thin)
        if not np.any(taken & (alpha > 0)):
            return alpha
    return None


def _object_alpha(rng: np.random.Generator, cls: int, h: int, w: int, thin: Thinness = THIN) -> np.ndarray:
    """Coverage in 0..1 of one object of class `cls`, drawn at SUPERSAMPLE x and averaged down."""
    side, name = min(h, w), CLASSES[cls]
    low, high = RADIUS_RANGE
    radius = max(3.0, side * math.exp(rng.uniform(math.log(low), math.log(high))))
    if name == "line":
        return _coverage(h, w, [_line(rng, h, w, thin)])
    cy, cx = rng.uniform(radius + 1, h - radius - 1), rng.uniform(radius + 1, w - radius - 1)
    if name == "circle":
        return _coverage(h, w, [_circle(cx, cy, radius)])
    if name == "ring":  # a band of 2 px or more, up to 40% of the radius (version 2)
        inner = radius - max(thin.min_px, radius * rng.uniform(*thin.ring_band))
        return _coverage(h, w, [_circle(cx, cy, radius), _circle(cx, cy, inner)])
    return _coverage(h, w, [_polygon(rng, cx, cy, radius, 4 if name == "square" else 3)])


def _coverage(h: int, w: int, outlines: list[list[tuple[float, float]]]) -> np.ndarray:
    """Pixel coverage of the first outline minus the others (holes), rasterised within its bounding box only."""
    s = SUPERSAMPLE
    xs, ys = [x for x, _ in outlines[0]], [y for _, y in outlines[0]]
    x0, y0 = max(0, int(min(xs)) - 1), max(0, int(min(ys)) - 1)
    x1, y1 = min(w, int(max(xs)) + 2), min(h, int(max(ys)) + 2)
    canvas = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    draw = ImageDraw.Draw(canvas)
    for index, outline in enumerate(outlines):
        draw.polygon([((x - x0) * s, (y - y0) * s) for x, y in outline], fill=0 if index else 255)
    big = np.asarray(canvas, np.float32) / 255.0
    alpha = np.zeros((h, w), np.float32)
    alpha[y0:y1, x0:x1] = big.reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3))
    return alpha


def _circle(cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
    """A circle as a polygon fine enough that its corners stay well under a supersampled pixel."""
    n = max(24, int(2 * math.pi * radius * SUPERSAMPLE / 2))
    return [(cx + radius * math.cos(2 * math.pi * k / n), cy + radius * math.sin(2 * math.pi * k / n)) for k in range(n)]


def _line(rng: np.random.Generator, h: int, w: int, thin: Thinness = THIN) -> list[tuple[float, float]]:
    """A straight bar 2% to 5% of the side wide (2 px at least; version 2) and 30% to 80% of it long."""
    side = min(h, w)
    width = max(thin.min_px, side * rng.uniform(*thin.line_width))
    half = side * rng.uniform(0.3, 0.8) / 2
    angle = rng.uniform(0, math.pi)
    dx, dy = half * math.cos(angle), half * math.sin(angle)
    margin = width + 1
    cx = rng.uniform(abs(dx) + margin, max(abs(dx) + margin + 1e-3, w - abs(dx) - margin))
    cy = rng.uniform(abs(dy) + margin, max(abs(dy) + margin + 1e-3, h - abs(dy) - margin))
    nx, ny = -math.sin(angle) * width / 2, math.cos(angle) * width / 2
    return [(cx - dx + nx, cy - dy + ny), (cx + dx + nx, cy + dy + ny), (cx + dx - nx, cy + dy - ny),
            (cx - dx - nx, cy - dy - ny)]


def _polygon(rng: np.random.Generator, cx: float, cy: float, radius: float, corners: int) -> list[tuple[float, float]]:
    start = rng.uniform(0, 2 * math.pi)
    return [(cx + radius * math.cos(start + 2 * math.pi * k / corners), cy + radius * math.sin(start + 2 * math.pi * k / corners))
            for k in range(corners)]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """H x W x 3 float pixels: smooth colour noise, and half the time stripes or a checkerboard over it."""
    image = _noise(rng, h, w)
    if rng.uniform() < 0.5:
        pattern = _stripes(rng, h, w) if rng.uniform() < 0.5 else _checker(rng, h, w)
        image = image + rng.uniform(*BACKGROUND_PATTERN) * (pattern[..., None] - 0.5) * rng.choice([-1.0, 1.0], 3)
    return image


def _visible_surface(rng: np.random.Generator, image: np.ndarray, alpha: np.ndarray, tries: int = 4) -> np.ndarray:
    """A surface whose mean colour differs from the background under the object by MIN_CONTRAST or more.

    An object painted nearly in its background's colour cannot be seen, only guessed: such labels
    would cap every model's mIoU without telling models (or precisions) apart.
    """
    h, w = alpha.shape
    inside = alpha > 0 if not np.any(alpha >= 0.5) else alpha >= 0.5
    under = image[inside].mean(axis=0)
    for _ in range(tries):
        surface = _surface(rng, h, w)
        if np.linalg.norm(surface[inside].mean(axis=0) - under) >= MIN_CONTRAST:
            break
    return surface


def _surface(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """H x W x 3 float pixels of an object's surface: a colour lit by a gradient, or two colours in a pattern."""
    kind = rng.uniform()
    if kind < PLAIN_SURFACES:
        colour = rng.uniform(0, 255, 3)
        angle, strength = rng.uniform(0, 2 * math.pi), rng.uniform(0, 40)
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        light = (xx * math.cos(angle) + yy * math.sin(angle) - 0.5) * strength
        return colour + light[..., None]
    share = (kind - PLAIN_SURFACES) / (1 - PLAIN_SURFACES)  # which pattern: stripes, checkerboard, grain
    if share < 0.4:
        pattern = _stripes(rng, h, w)
    elif share < 0.8:
        pattern = _checker(rng, h, w)
    else:
        noise = Image.fromarray(rng.uniform(0, 255, (h, w)).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
        pattern = np.asarray(noise, np.float32) / 255.0
    a = rng.uniform(0, 255, 3)
    direction = rng.normal(size=3)
    b = np.clip(a + direction / np.linalg.norm(direction) * rng.uniform(*PATTERN_CONTRAST), 0, 255)
    return a * (1 - pattern[..., None]) + b * pattern[..., None]


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Two random colours mixed by smooth noise of 2 to 7 cells a side."""
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    cells = int(rng.integers(2, 8))
    coarse = Image.fromarray((rng.uniform(0, 255, (cells, cells))).astype(np.uint8))
    mix = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), np.float32)[..., None] / 255.0
    return a * (1 - mix) + b * mix


def _stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """0..1 stripes of a period of 3 to 14 px at a random angle, from soft to nearly hard-edged."""
    angle, period, sharp = rng.uniform(0, math.pi), rng.uniform(3, 14), rng.uniform(1, 6)
    yy, xx = np.mgrid[0:h, 0:w]
    wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    return 0.5 + 0.5 * np.tanh(sharp * wave) / math.tanh(sharp)


def _checker(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """0..1 checkerboard of 3 to 10 px cells, rotated."""
    angle, cell = rng.uniform(0, math.pi / 2), rng.uniform(3, 10)
    yy, xx = np.mgrid[0:h, 0:w]
    u = (xx * math.cos(angle) + yy * math.sin(angle)) / cell
    v = (-xx * math.sin(angle) + yy * math.cos(angle)) / cell
    return ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
