"""Accuracy inputs of `segedge report`: mIoU of every row at one input size, calibration images.

Every runtime row runs one static shape, so all images are measured at one size: their own when
they all share one that the model takes (the demo data's, say: a model trained on 96 x 96 images
is measured on them as they are, not on 5x enlargements), else the report's input size, each
image resized to it and the label map resized back to the mask with nearest neighbour. 255 is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from runtimes.model.card import ModelCard
from runtimes.guards.fileio import work_folder
from runtimes.imaging.image import load_image
from runtimes.measure.metrics import ConfusionMatrix
from runtimes.imaging.postprocess import labels
from runtimes.imaging.preprocess import normalize, resize_rgb
from segedge.data.labelled import read_mask


def image_input(path: Path, card: ModelCard, size: tuple[int, int]) -> np.ndarray:
    """One image -> 1 x 3 x H x W float32 at `size`, normalised as the card says."""
    return normalize(resize_rgb(load_image(path), size), card)[None]


def accuracy_size(pairs: list[tuple[Path, Path]], card: ModelCard, size: tuple[int, int]) -> tuple[int, int]:
    """The images' own size when they share one the model takes (dynamic, a stride multiple); else `size`."""
    sizes = set()
    for image_path, _ in pairs:
        with Image.open(image_path) as image:  # reads the header only
            sizes.add((image.height, image.width))
        if len(sizes) > 1:
            return size
    (own,) = sizes
    fits = card.dynamic and card.valid_margin == 0 and all(side % max(1, card.size_divisor) == 0 for side in own)
    return own if fits else size


def mean_iou(pairs: list[tuple[Path, Path]], run: Callable[[np.ndarray], np.ndarray], card: ModelCard,
             size: tuple[int, int]) -> float:
    matrix = ConfusionMatrix(max(2, len(card.classes)))
    for image_path, mask_path in pairs:
        mask = read_mask(mask_path)
        label_map = labels(np.asarray(run(image_input(image_path, card, size)), dtype=np.float32)[0], card.output_kind,
                           card.threshold)
        resized = Image.fromarray(label_map.astype(np.int32)).resize(mask.shape[::-1], Image.Resampling.NEAREST)
        matrix.update(mask, np.asarray(resized))
    return matrix.mean_iou()


@contextmanager
def calibration_folder(calib: Path | None, size: tuple[int, int], count: int) -> Iterator[tuple[Path, str]]:
    """The folder of calibration images, and where it came from.

    Without `--calib`, the synthetic shapes dataset's images stand in (made in a temp folder,
    removed afterwards): they exercise the int8 path end to end, but only a model trained on
    them is calibrated well by them, so the report says which images were used.
    """
    if calib is not None:
        yield calib, str(calib)
        return
    from segedge.data import ShapesConfig, write_shapes_dataset

    with work_folder("segedge-calib-") as workdir:
        side = (max(32, size[0]), max(32, size[1]))
        root = write_shapes_dataset(workdir, ShapesConfig(train=count, val=0, size=side))
        yield root / "JPEGImages", f"{count} synthetic shapes images (no --calib given)"
