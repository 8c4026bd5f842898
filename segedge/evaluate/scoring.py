"""Scoring one labeller on labelled pairs: mIoU, pixel accuracy and per-class IoU (what eval and training share).

A labeller takes an H x W x 3 RGB image and gives an H x W label map of the same size; 255 in a mask
is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.model.card import ModelCard
from runtimes.measure.metrics import ConfusionMatrix
from runtimes.imaging.postprocess import labels as to_labels
from runtimes.imaging.preprocess import at_input_resolution, from_model_output, to_model_input
from runtimes.measure.metrics import IGNORE_INDEX

from segedge.data.labelled import read_pair

Labeller = Callable[[np.ndarray], np.ndarray]


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


def torch_labeller(model: Any, card: ModelCard) -> Labeller:
    """A PyTorch model (eval mode, N x C x H x W logits) as a labeller, prepared as the Predictor does
    (logits at 1/output_stride upsampled bilinearly to the input's size first)."""
    import torch

    def label(rgb: np.ndarray) -> np.ndarray:
        x, placement = to_model_input(rgb, card)
        with torch.no_grad():
            output = model(torch.from_numpy(x[None]))[0].float().numpy()
        output = at_input_resolution(output, card, (x.shape[1], x.shape[2]))
        return to_labels(from_model_output(output, placement), card.output_kind, card.threshold)

    return label
