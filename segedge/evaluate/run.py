"""Accuracy on a labelled folder: mIoU, pixel accuracy and per-class IoU, for several models alike.

Each model is a labeller: an H x W x 3 RGB image in, an H x W label map of the same size out.
ONNX files are run by `runtimes.Predictor` (what apps run, at each image's own size); a PyTorch
model gets the same preprocessing (`to_model_input` with its card) and the same crop back.
Masks are index or palette PNGs; 255 is ignored. Images stream one at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.card import ModelCard
from runtimes.metrics import ConfusionMatrix
from runtimes.postprocess import labels as to_labels
from runtimes.preprocess import from_model_output, to_model_input

from .report_data import labelled_pairs, read_pair

Labeller = Callable[[np.ndarray], np.ndarray]
IGNORE_INDEX = 255


@dataclass(frozen=True)
class Accuracy:
    name: str
    miou: float
    pixel_accuracy: float
    per_class_iou: tuple[float, ...]
    images: int
    seconds: float

    def to_dict(self) -> dict:
        return {"name": self.name, "miou": self.miou, "pixel_accuracy": self.pixel_accuracy,
                "per_class_iou": [None if np.isnan(v) else v for v in self.per_class_iou],
                "images": self.images, "seconds": self.seconds}


def evaluate(name: str, labeller: Labeller, pairs: Sequence[tuple[Path, Path]], num_classes: int) -> Accuracy:
    """Run `labeller` on every (image, mask) pair and score it."""
    start = time.perf_counter()
    matrix = ConfusionMatrix(num_classes, IGNORE_INDEX)
    for image_path, mask_path in pairs:
        rgb, mask = read_pair(image_path, mask_path)
        matrix.update(mask, labeller(rgb))
    return Accuracy(name, matrix.mean_iou(), matrix.pixel_accuracy(), tuple(float(v) for v in matrix.iou()),
                    len(pairs), time.perf_counter() - start)


def onnx_labeller(path: str | os.PathLike[str], threads: int | None = None) -> tuple[Labeller, ModelCard]:
    from runtimes.predictor import Predictor

    predictor = Predictor(path, threads=threads)
    return predictor.predict, predictor.card


def torch_labeller(model, card: ModelCard) -> Labeller:
    """A PyTorch model (eval mode, N x C x H x W logits) as a labeller, prepared as the Predictor does."""
    import torch

    def label(rgb: np.ndarray) -> np.ndarray:
        x, placement = to_model_input(rgb, card)
        with torch.no_grad():
            output = model(torch.from_numpy(x[None]))[0].float().numpy()
        return to_labels(from_model_output(output, placement), card.output_kind)

    return label


def dataset_pairs(root: str | os.PathLike[str], limit: int | None = None) -> list[tuple[Path, Path]]:
    """The (image, mask) pairs of a labelled folder: VOC layout (val split) or images/ + masks/."""
    return labelled_pairs(root, limit)
