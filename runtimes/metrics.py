"""Numbers that compare two segmentation outputs, and segmentation accuracy against labels.

Parity (`compare_logits`): max/mean absolute error, max relative error, cosine similarity, SQNR
in dB, and agreement of the two argmax label maps (pixel agreement and per-class IoU).
Accuracy (`ConfusionMatrix`): mIoU and pixel accuracy with an ignore index, accumulated image
by image so a dataset never sits in memory.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class ParityReport:
    max_abs: float
    mean_abs: float
    max_rel: float
    cosine: float
    sqnr_db: float
    argmax_agreement: float
    logits_range: float
    per_class_iou: dict[int, float] = field(default_factory=dict)

    @property
    def min_class_iou(self) -> float:
        return min(self.per_class_iou.values(), default=1.0)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["per_class_iou"] = {str(k): v for k, v in self.per_class_iou.items()}
        return out


def label_map(logits: np.ndarray) -> np.ndarray:
    """N x C x H x W logits (or N x 1 x H x W binary logits) -> N x H x W labels."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return logits.argmax(axis=1)


def compare_logits(reference: np.ndarray, candidate: np.ndarray) -> ParityReport:
    """Compare two N x C x H x W outputs; `reference` is the trusted one."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape} vs candidate {candidate.shape}")
    ref = reference.astype(np.float64)
    cand = candidate.astype(np.float64)
    diff = np.abs(ref - cand)
    logits_range = float(ref.max() - ref.min()) if ref.size else 0.0
    # Relative error against the logits' scale, not per element: near-zero logits would make
    # a per-element ratio meaningless.
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-12)
    noise = float(np.sum(diff**2))
    signal = float(np.sum(ref**2))
    norms = float(np.linalg.norm(ref) * np.linalg.norm(cand))
    labels_ref, labels_cand = label_map(reference), label_map(candidate)
    return ParityReport(
        max_abs=float(diff.max()) if diff.size else 0.0,
        mean_abs=float(diff.mean()) if diff.size else 0.0,
        max_rel=float(diff.max() / scale) if diff.size else 0.0,
        cosine=float(np.sum(ref * cand) / norms) if norms > 0 else 1.0,
        sqnr_db=float(10 * math.log10(signal / noise)) if noise > 0 else math.inf,
        argmax_agreement=float(np.mean(labels_ref == labels_cand)) if labels_ref.size else 1.0,
        logits_range=logits_range,
        per_class_iou=label_iou(labels_ref, labels_cand),
    )


def label_iou(a: np.ndarray, b: np.ndarray) -> dict[int, float]:
    """Per-class IoU between two label maps, over the classes present in either."""
    out = {}
    for cls in np.union1d(np.unique(a), np.unique(b)):
        inter = np.count_nonzero((a == cls) & (b == cls))
        union = np.count_nonzero((a == cls) | (b == cls))
        out[int(cls)] = inter / union if union else 1.0
    return out


class ConfusionMatrix:
    """Accumulates a C x C confusion matrix; rows are ground truth, columns predictions."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, target: np.ndarray, prediction: np.ndarray) -> None:
        if target.shape != prediction.shape:
            raise ValueError(f"mask {target.shape} and prediction {prediction.shape} differ in size")
        keep = (target != self.ignore_index) & (target < self.num_classes)
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
