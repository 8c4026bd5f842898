"""How far a converted model (fp16, int8) is from its fp32 original, measured on images.

Both models see each image prepared as the Predictor prepares it and their outputs are cropped
back to the image; then, accumulated over all images: argmax agreement, IoU of each class
between the two label maps, SQNR and largest difference of the logits, whether every output is
finite, and, where masks are given, each model's mIoU against them. Images stream one at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from runtimes.card import ModelCard
from runtimes.metrics import ConfusionMatrix, ParityReport
from runtimes.postprocess import labels as to_labels
from runtimes.preprocess import from_model_output, to_model_input

Sample = tuple[np.ndarray, "np.ndarray | None"]  # RGB image, optional label mask
Runner = Callable[[np.ndarray], np.ndarray]  # N x 3 x H x W float32 -> N x C x H x W logits


@dataclass(frozen=True)
class Agreement:
    images: int
    source: str
    argmax_agreement: float
    per_class_iou: dict[int, float]
    sqnr_db: float
    max_abs: float
    mean_abs: float
    max_rel: float  # max_abs over the reference's largest |logit|
    cosine: float
    logits_range: float
    finite: bool
    miou_reference: float | None = None
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

    def as_parity_report(self) -> ParityReport:
        """In the shape `runtimes.checks.Tolerance` judges (per-image means are not needed there)."""
        return ParityReport(
            max_abs=self.max_abs, mean_abs=self.mean_abs, max_rel=self.max_rel,
            cosine=self.cosine, sqnr_db=self.sqnr_db, argmax_agreement=self.argmax_agreement if self.finite else 0.0,
            logits_range=self.logits_range, per_class_iou=self.per_class_iou,
        )

    def to_dict(self) -> dict:
        def clean(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else v

        return {
            "images": self.images, "source": self.source, "argmax_agreement": self.argmax_agreement,
            "min_class_iou": self.min_class_iou,
            "per_class_iou": {str(k): v for k, v in self.per_class_iou.items()},
            "sqnr_db": clean(self.sqnr_db), "max_abs": clean(self.max_abs), "mean_abs": clean(self.mean_abs),
            "cosine": clean(self.cosine), "logits_range": self.logits_range,
            "finite": self.finite, "miou_reference": self.miou_reference, "miou": self.miou,
            "miou_drop_points": self.miou_drop_points,
        }


def measure(reference: Runner, candidate: Runner, card: ModelCard, samples: Iterable[Sample], source: str) -> Agreement:
    """Compare `candidate` with `reference` (e.g. the fp32 model's `ModelSession.run`) on `samples`."""
    n = max(2, card.num_classes)
    between = ConfusionMatrix(n)
    vs_labels = {"reference": ConfusionMatrix(n), "candidate": ConfusionMatrix(n)}
    signal = noise = max_abs = total_abs = dot = candidate_energy = 0.0
    values = 0
    low, high = math.inf, -math.inf
    finite, images, labelled = True, 0, 0
    for rgb, mask in samples:
        x, placement = to_model_input(rgb, card)
        ref = from_model_output(reference(x[None])[0], placement).astype(np.float64)
        cand = from_model_output(candidate(x[None])[0], placement).astype(np.float64)
        finite = finite and bool(np.isfinite(cand).all())
        diff = np.nan_to_num(np.abs(ref - cand), nan=np.inf)
        signal, noise, max_abs = signal + float(np.sum(ref**2)), noise + float(np.sum(diff**2)), max(max_abs, float(diff.max()))
        total_abs, values = total_abs + float(diff.sum()), values + diff.size
        dot, candidate_energy = dot + float(np.sum(ref * cand)), candidate_energy + float(np.sum(cand**2))
        low, high = min(low, float(ref.min())), max(high, float(ref.max()))
        ref_labels, cand_labels = to_labels(ref, card.output_kind), to_labels(cand, card.output_kind)
        between.update(ref_labels, cand_labels)
        if mask is not None:
            vs_labels["reference"].update(mask, ref_labels)
            vs_labels["candidate"].update(mask, cand_labels)
            labelled += 1
        images += 1
    iou = between.iou()
    return Agreement(
        images=images,
        source=source,
        argmax_agreement=between.pixel_accuracy() if images else 1.0,
        per_class_iou={c: float(v) for c, v in enumerate(iou) if not np.isnan(v)},
        sqnr_db=10 * math.log10(signal / noise) if noise > 0 else math.inf,
        max_abs=max_abs,
        mean_abs=total_abs / values if values else 0.0,
        max_rel=max_abs / max(abs(low), abs(high), 1e-12) if images else 0.0,
        cosine=dot / math.sqrt(signal * candidate_energy) if signal * candidate_energy > 0 else 1.0,
        logits_range=high - low if images else 0.0,
        finite=finite,
        miou_reference=vs_labels["reference"].mean_iou() if labelled else None,
        miou=vs_labels["candidate"].mean_iou() if labelled else None,
        per_class_iou_vs_labels={c: float(v) for c, v in enumerate(vs_labels["candidate"].iou())} if labelled else {},
    )


@dataclass(frozen=True)
class ImagesParity:
    """`segedge verify --images`: one judged row over a folder of images (a `SizeParity` look-alike)."""

    label: str
    provider: str
    report: ParityReport
    failures: tuple[str, ...]
    agreement: Agreement

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"label": self.label, "provider": self.provider, "passed": self.passed,
                "failures": list(self.failures), **self.agreement.to_dict()}


MAX_VERIFY_IMAGES = 32


def compare_on_images(reference: Runner, candidate, card: ModelCard, folder, tolerance) -> ImagesParity:
    """Judge `candidate` (a ModelSession) against `reference` on up to 32 images of `folder`."""
    from exporters.calibration import image_files, spread
    from runtimes.image import load_image

    paths = spread(image_files(folder), MAX_VERIFY_IMAGES)
    agreement = measure(reference, candidate.run, card, ((load_image(p), None) for p in paths), str(folder))
    failures = ([] if agreement.finite else ["outputs are not all finite"]) + tolerance.failures(agreement.as_parity_report())
    return ImagesParity(f"{len(paths)} images", candidate.provider.value, agreement.as_parity_report(),
                        tuple(failures), agreement)
