"""Parity: how far a model's outputs are from a reference's, and whether that passes.

The one place where "the same masks" is measured and judged. verify, quantize, eval, report and
the edge targets all feed pairs of outputs (reference, candidate) into a `ParityAccumulator`,
which streams: sizes or images, one at a time, nothing kept but sums and a confusion matrix.
It measures the raw outputs (max/mean absolute error, error relative to the reference's largest
value, cosine, SQNR in dB, whether every value is finite) and the label maps the two outputs
give (pixel agreement, the IoU of each class between the maps), and, where ground-truth masks
are given, both models' mIoU against them. Outputs become labels in exactly one way,
`runtimes.imaging.postprocess.labels`, by the card's output kind and threshold: a one-channel sigmoid
model is labelled by its probability, never by the sign of its output.

`judge(parity, tolerance)` applies a preset (`PRESETS[Precision.int8]`, ...) and returns the
reasons it fails, the finite check first; an empty list passes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..backends.run_batch import RunBatch
from ..model.card import ModelCard, OutputKind
from ..errors import ParityError
from .metrics import ConfusionMatrix
from ..imaging.postprocess import labels
from ..model.precision import Precision
from ..imaging.preprocess import at_input_resolution, from_model_output, to_model_input

Sample = tuple[np.ndarray, "np.ndarray | None"]  # an RGB image (as load_image gives it) and its mask, if any

IGNORE_INDEX = 255


@dataclass(frozen=True)
class Parity:
    """What a `ParityAccumulator` measured over `images` pairs of outputs of `source`."""

    images: int  # images (or generated inputs) compared
    source: str
    max_abs: float
    mean_abs: float
    max_rel: float  # max_abs over the reference's largest |value|: a scale-free error
    cosine: float
    sqnr_db: float
    logits_range: float
    finite: bool
    argmax_agreement: float
    per_class_iou: dict[int, float] = field(default_factory=dict)  # between the two label maps
    miou_reference: float | None = None  # against ground-truth masks, when given
    miou: float | None = None
    per_class_iou_vs_labels: dict[int, float] = field(default_factory=dict)

    @property
    def min_class_iou(self) -> float:
        return min(self.per_class_iou.values(), default=1.0)

    @property
    def miou_drop_points(self) -> float | None:
        """mIoU points lost against the labels (100 x difference); None without labels."""
        if self.miou is None or self.miou_reference is None:
            return None
        return 100.0 * (self.miou_reference - self.miou)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images, "source": self.source, "max_abs": _finite_or_none(self.max_abs),
            "mean_abs": _finite_or_none(self.mean_abs), "max_rel": _finite_or_none(self.max_rel),
            "cosine": _finite_or_none(self.cosine), "sqnr_db": _finite_or_none(self.sqnr_db),
            "logits_range": _finite_or_none(self.logits_range), "finite": self.finite,
            "argmax_agreement": self.argmax_agreement, "min_class_iou": self.min_class_iou,
            "per_class_iou": {str(k): v for k, v in self.per_class_iou.items()},
            "miou_reference": self.miou_reference, "miou": self.miou, "miou_drop_points": self.miou_drop_points,
            "per_class_iou_vs_labels": {str(k): v for k, v in self.per_class_iou_vs_labels.items()},
        }


class ParityAccumulator:
    """Streams (reference, candidate[, mask]) outputs and sums what `Parity` reports.

    Outputs are C x H x W for one image or N x C x H x W for a batch, float; both of a pair
    must have the same shape. `num_classes` sizes the confusion matrices (None: the outputs'
    channel count, 2 for a one-channel model).
    """

    def __init__(self, num_classes: int | None = None, output_kind: OutputKind = "logits",
                 threshold: float = 0.5, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.output_kind = output_kind
        self.threshold = threshold
        self.ignore_index = ignore_index
        self.images = 0
        self._between: ConfusionMatrix | None = None
        self._vs_labels: tuple[ConfusionMatrix, ConfusionMatrix] | None = None
        self._signal = self._noise = self._dot = self._candidate_energy = 0.0
        self._max_abs = self._total_abs = 0.0
        self._values = 0
        self._low, self._high = math.inf, -math.inf
        self._finite = True
        self._labelled = False

    def add(self, reference: np.ndarray, candidate: np.ndarray, mask: np.ndarray | None = None) -> None:
        """One image's outputs (C x H x W), or a batch's (N x C x H x W, then `mask` is N x H x W)."""
        if reference.shape != candidate.shape:
            raise ParityError(f"the outputs differ in shape: reference {tuple(reference.shape)}, "
                              f"candidate {tuple(candidate.shape)}")
        if reference.ndim == 3:
            self._add_one(reference, candidate, mask)
        elif reference.ndim == 4:
            for i in range(reference.shape[0]):
                self._add_one(reference[i], candidate[i], None if mask is None else mask[i])
        else:
            raise ParityError(f"outputs must be C x H x W or N x C x H x W, got shape {tuple(reference.shape)}")

    def _add_one(self, reference: np.ndarray, candidate: np.ndarray, mask: np.ndarray | None) -> None:
        ref = reference.astype(np.float64, copy=False)
        cand = candidate.astype(np.float64, copy=False)
        finite = bool(np.isfinite(cand).all())
        self._finite = self._finite and finite
        diff = np.abs(ref - cand)
        if not finite:
            diff = np.nan_to_num(diff, nan=np.inf)
        self._signal += float(np.sum(ref * ref))
        self._noise += float(np.sum(diff * diff))
        self._dot += float(np.sum(ref * cand))
        self._candidate_energy += float(np.sum(cand * cand))
        self._max_abs = max(self._max_abs, float(diff.max(initial=0.0)))
        self._total_abs += float(diff.sum())
        self._values += diff.size
        if ref.size:
            self._low, self._high = min(self._low, float(ref.min())), max(self._high, float(ref.max()))
        ref_labels = labels(reference, self.output_kind, self.threshold)
        cand_labels = labels(np.nan_to_num(candidate), self.output_kind, self.threshold)
        between, vs_labels = self._matrices(reference.shape[0])
        between.update(ref_labels, cand_labels)
        if mask is not None:
            vs_labels[0].update(mask, ref_labels)
            vs_labels[1].update(mask, cand_labels)
            self._labelled = True
        self.images += 1

    def _matrices(self, channels: int) -> tuple[ConfusionMatrix, tuple[ConfusionMatrix, ConfusionMatrix]]:
        if self._between is None:
            n = self.num_classes or channels
            n = max(n, 2)
            self._between = ConfusionMatrix(n, ignore_index=None)  # between two label maps: nothing to ignore
            self._vs_labels = (ConfusionMatrix(n, self.ignore_index), ConfusionMatrix(n, self.ignore_index))
        assert self._vs_labels is not None
        return self._between, self._vs_labels

    def result(self, source: str = "") -> Parity:
        """The figures so far (an empty accumulator reports perfect agreement over 0 images)."""
        between = self._between
        iou = between.iou() if between is not None else np.array([])
        vs = self._vs_labels if self._labelled else None
        has = self._values > 0
        scale = max(abs(self._low), abs(self._high), 1e-12) if has else 1.0
        energy = self._signal * self._candidate_energy
        return Parity(
            images=self.images,
            source=source,
            max_abs=self._max_abs,
            mean_abs=self._total_abs / self._values if has else 0.0,
            max_rel=self._max_abs / scale if has else 0.0,
            cosine=(self._dot / math.sqrt(energy) if energy > 0 else 1.0) if self._finite else math.nan,
            sqnr_db=_sqnr_db(self._signal, self._noise),
            logits_range=self._high - self._low if has else 0.0,
            finite=self._finite,
            argmax_agreement=between.pixel_accuracy() if between is not None and between.matrix.sum() else 1.0,
            per_class_iou={c: float(v) for c, v in enumerate(iou) if not np.isnan(v)},
            miou_reference=vs[0].mean_iou() if vs else None,
            miou=vs[1].mean_iou() if vs else None,
            per_class_iou_vs_labels={c: float(v) for c, v in enumerate(vs[1].iou()) if not np.isnan(v)} if vs else {},
        )


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, output_kind: OutputKind = "logits",
                    threshold: float = 0.5, num_classes: int | None = None, source: str = "") -> Parity:
    """`Parity` of one pair of outputs (C x H x W or N x C x H x W)."""
    accumulator = ParityAccumulator(num_classes, output_kind, threshold)
    accumulator.add(reference, candidate)
    return accumulator.result(source)


@dataclass(frozen=True)
class Tolerance:
    """Passes when every output is finite, max_abs <= atol + rtol * logits_range (if either is set),
    the label maps agree on at least `min_agreement` of pixels, and every class keeps IoU >= `min_class_iou`."""

    atol: float | None = None
    rtol: float | None = None
    min_agreement: float = 0.9999
    min_class_iou: float | None = None

    def with_overrides(self, atol: float | None = None, rtol: float | None = None,
                       min_agreement: float | None = None, min_class_iou: float | None = None) -> Tolerance:
        out = self
        if atol is not None or rtol is not None:
            out = replace(out, atol=atol if atol is not None else 0.0, rtol=rtol if rtol is not None else 0.0)
        if min_agreement is not None:
            out = replace(out, min_agreement=min_agreement)
        if min_class_iou is not None:
            out = replace(out, min_class_iou=min_class_iou)
        return out


PRESETS: dict[Precision, Tolerance] = {
    # fp32 is judged on the outputs themselves: an export must not change them.
    Precision.fp32: Tolerance(atol=0.0, rtol=1e-4, min_agreement=0.9999),
    # fp16 and int8 change outputs by design, so their presets judge what users see: the masks.
    Precision.fp16: Tolerance(min_agreement=0.999, min_class_iou=0.98),
    # Measured on the trained demo U-Nets (segedge.train.recipe): int8 kept 99.3-99.6% argmax agreement and
    # lost < 0.1 mIoU point, yet the IoU between the fp32 and int8 maps of their weakest class (the
    # small triangles, mostly boundary) was 0.90-0.95: 0.90 left no margin, 0.85 still fails a
    # model that swaps or loses a class.
    Precision.int8: Tolerance(min_agreement=0.98, min_class_iou=0.85),
}


def preset(precision: Precision | str) -> Tolerance:
    return PRESETS[Precision(precision)]


def judge(parity: Parity, tolerance: Tolerance) -> list[str]:
    """Human-readable reasons `parity` fails `tolerance`; empty when it passes."""
    if not parity.finite:
        return ["outputs are not all finite"]
    out = []
    if tolerance.atol is not None or tolerance.rtol is not None:
        bound = (tolerance.atol or 0.0) + (tolerance.rtol or 0.0) * parity.logits_range
        if not parity.max_abs <= bound:
            out.append(f"max abs error {parity.max_abs:.3g} > {bound:.3g}")
    if not parity.argmax_agreement >= tolerance.min_agreement:
        out.append(f"argmax agreement {parity.argmax_agreement:.4%} < {tolerance.min_agreement:.4%}")
    if tolerance.min_class_iou is not None and not parity.min_class_iou >= tolerance.min_class_iou:
        worst = min(parity.per_class_iou, key=lambda c: parity.per_class_iou[c])
        out.append(f"class {worst} IoU {parity.min_class_iou:.4f} < {tolerance.min_class_iou}")
    return out


@dataclass(frozen=True)
class ParityCheck:
    """One judged comparison: at one input size ("2x512x512") or over a set of images ("32 images")."""

    label: str
    provider: str
    parity: Parity
    failures: tuple[str, ...]
    size: tuple[int, int] | None = None  # the input size of a generated batch
    batch: int | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        where = {"size": list(self.size), "batch": self.batch} if self.size is not None else {}
        return {"label": self.label, **where, "provider": self.provider, "passed": self.passed,
                "failures": list(self.failures), **self.parity.to_dict()}


def check_sizes(reference: RunBatch, candidate: RunBatch, card: ModelCard, sizes: Sequence[tuple[int, int]],
                tolerance: Tolerance, *, provider: str = "cpu", batch: int = 1, seed: int = 0,
                threshold: float | None = None) -> list[ParityCheck]:
    """Judge `candidate` against `reference` on a generated batch at each size (model inputs, no cropping)."""
    checks = []
    for i, (h, w) in enumerate(sizes):
        x = sample_input(card, batch, (h, w), seed + i)
        accumulator = ParityAccumulator(card.num_classes or None, card.output_kind, _threshold(card, threshold))
        accumulator.add(reference(x), candidate(x))
        parity = accumulator.result(f"generated {batch}x{h}x{w}")
        checks.append(ParityCheck(f"{batch}x{h}x{w}", provider, parity, tuple(judge(parity, tolerance)), (h, w), batch))
    return checks


def measure_images(reference: RunBatch, candidate: RunBatch, card: ModelCard, samples: Iterable[Sample],
                   source: str, threshold: float | None = None) -> Parity:
    """Both models on each image prepared as the Predictor prepares it, outputs cropped back to the image
    (1/k logits upsampled first, as the Predictor does, so that they meet the image's mask)."""
    accumulator = ParityAccumulator(card.num_classes or None, card.output_kind, _threshold(card, threshold))
    for rgb, mask in samples:
        x, placement = to_model_input(rgb, card)
        size = (x.shape[1], x.shape[2])
        accumulator.add(from_model_output(at_input_resolution(reference(x[None])[0], card, size), placement),
                        from_model_output(at_input_resolution(candidate(x[None])[0], card, size), placement), mask)
    return accumulator.result(source)


def check_images(reference: RunBatch, candidate: RunBatch, card: ModelCard, samples: Iterable[Sample], source: str,
                 tolerance: Tolerance, *, provider: str = "cpu", threshold: float | None = None) -> ParityCheck:
    parity = measure_images(reference, candidate, card, samples, source, threshold)
    return ParityCheck(f"{parity.images} images", provider, parity, tuple(judge(parity, tolerance)))


def sample_input(card: ModelCard, batch: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """A normalised N x 3 x H x W input: smooth random images pushed through the card's normalisation."""
    rng = np.random.default_rng(seed)
    h, w = size
    # Low-frequency noise upsampled: closer to photo statistics than white noise.
    coarse = rng.uniform(0, 255, (batch, 3, max(2, h // 16), max(2, w // 16)))
    rows = np.linspace(0, coarse.shape[2] - 1, h).round().astype(int)
    cols = np.linspace(0, coarse.shape[3] - 1, w).round().astype(int)
    pixels = np.clip(coarse[:, :, rows][:, :, :, cols] + rng.normal(0, 12, (batch, 3, h, w)), 0, 255)
    mean = np.asarray(card.mean).reshape(1, 3, 1, 1)
    std = np.asarray(card.std).reshape(1, 3, 1, 1)
    return ((pixels * card.scale - mean) / std).astype(np.float32)


def _threshold(card: ModelCard, given: float | None) -> float:
    return card.threshold if given is None else given


def _sqnr_db(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    if not math.isfinite(noise) or signal == 0:
        return -math.inf  # non-finite outputs, or noise against a reference of zeros
    return 10 * math.log10(signal / noise)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
