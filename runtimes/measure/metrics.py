"""Segmentation accuracy: a confusion matrix accumulated image by image, mIoU and pixel accuracy.

A dataset never sits in memory: each (target, prediction) pair of label maps is added and
dropped. `runtimes.measure.parity` uses the same matrix between two models' label maps.
"""

from __future__ import annotations

import numpy as np


# The label value that marks pixels no class is scored on (VOC's border, the shapes data's thin edges).
IGNORE_INDEX = 255


class ConfusionMatrix:
    """Accumulates a C x C confusion matrix; rows are ground truth, columns predictions."""

    def __init__(self, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, target: np.ndarray, prediction: np.ndarray) -> None:
        if target.shape != prediction.shape:
            raise ValueError(f"mask {target.shape} and prediction {prediction.shape} differ in size")
        keep = target < self.num_classes
        if self.ignore_index is not None:
            keep &= target != self.ignore_index
        index = target[keep].astype(np.int64) * self.num_classes + prediction[keep].astype(np.int64)
        self.matrix += np.bincount(index, minlength=self.num_classes**2).reshape(self.matrix.shape)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class absent from both targets and predictions."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def mean_iou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")
