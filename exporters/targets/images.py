"""Images for calibrating and verifying a target's artefact, prepared as the Predictor prepares them.

A static-shape artefact takes exactly one input size, so each image is first resized to the
size whose model input (`runtimes.imaging.preprocess.to_model_input`: card normalisation, colour order,
padding to the stride, the valid-mode margin) is that shape; then it goes through the Predictor's
own preprocessing. Without a folder of the user's images, generated ones stand in: coloured
rectangles and discs on a gradient, seeded, so that label maps hold several classes and edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from runtimes.model.card import ModelCard
from runtimes.errors import UsageError
from runtimes.imaging.image import load_image
from runtimes.imaging.preprocess import model_input_size, resize_rgb, to_model_input

from ..calibration import ImageFolderReader


def model_input(rgb: np.ndarray, card: ModelCard, size: tuple[int, int]) -> np.ndarray:
    """3 x H x W float32 for a model whose input is `size` (H, W): `rgb` resized, then prepared."""
    image_size = image_size_for(card, size)
    if rgb.shape[:2] != image_size:
        rgb = resize_rgb(rgb, image_size)
    x, _ = to_model_input(rgb, card)
    return x


def image_size_for(card: ModelCard, size: tuple[int, int]) -> tuple[int, int]:
    """The image size that `to_model_input` turns into a model input of exactly `size`."""
    margin = card.valid_margin
    image_size = (size[0] - 2 * margin, size[1] - 2 * margin)
    if min(image_size) < 1 or model_input_size(image_size, card)[1] != tuple(size):
        raise UsageError(f"input size {size[0]}x{size[1]} is not one the model takes (size divisor "
                         f"{card.size_divisor}, valid margin {margin}); pick a multiple of the divisor")
    return image_size


def synthetic_images(count: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = size
    rows, cols = np.mgrid[0:h, 0:w]
    images = []
    for _ in range(count):
        base = rng.integers(0, 256, 3)
        image = (base + (rows / max(h, 1))[..., None] * rng.integers(-60, 60, 3)).clip(0, 255)
        for _ in range(int(rng.integers(3, 7))):
            colour = rng.integers(0, 256, 3)
            top, left = int(rng.integers(0, h)), int(rng.integers(0, w))
            dh, dw = int(rng.integers(h // 8 + 1, h // 2 + 2)), int(rng.integers(w // 8 + 1, w // 2 + 2))
            if rng.random() < 0.5:
                image[top : top + dh, left : left + dw] = colour
            else:
                disc = (rows - top) ** 2 / dh**2 + (cols - left) ** 2 / dw**2 <= 1
                image[disc] = colour
        images.append(image.astype(np.uint8))
    return images


class StaticSizeReader(ImageFolderReader):
    """`ImageFolderReader` for a static-shape model: each image resized to the model's size first."""

    def __init__(self, paths: Sequence[Path], card: ModelCard, input_name: str, size: tuple[int, int]) -> None:
        super().__init__(paths, card, input_name)
        self.size = size

    def get_next(self) -> dict[str, np.ndarray] | None:
        path = next(self._pending, None)
        if path is None:
            return None
        return {self.input_name: model_input(load_image(path), self.card, self.size)[None]}
