"""The one parity judge (runtimes.measure.parity): what it measures, how it labels, and how presets judge it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runtimes.model.card import ModelCard
from runtimes.errors import ParityError
from runtimes.measure.parity import (
    PRESETS,
    ParityAccumulator,
    check_sizes,
    compare_outputs,
    judge,
    measure_images,
    sample_input,
)
from runtimes.model.precision import Precision


def logits(labels: np.ndarray, classes: int, margin: float = 4.0) -> np.ndarray:
    """C x H x W logits whose argmax is `labels`."""
    out = np.zeros((classes, *labels.shape), np.float32)
    for c in range(classes):
        out[c][labels == c] = margin
    return out


def test_identical_outputs_are_perfect_parity():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 9)).astype(np.float32)
    parity = compare_outputs(x, x.copy())
    assert parity.images == 2 and parity.max_abs == 0 and parity.sqnr_db == math.inf
    assert parity.argmax_agreement == 1.0 and parity.cosine == pytest.approx(1.0) and parity.finite
    assert judge(parity, PRESETS[Precision.fp32]) == []


def test_agreement_and_class_iou_count_pixels_exactly():
    reference = np.zeros((10, 10), np.int64)
    reference[:, 5:] = 1  # 50 pixels of each class
    candidate = reference.copy()
    candidate[0, :5] = 1  # 5 background pixels flipped to class 1
    parity = compare_outputs(logits(reference, 2), logits(candidate, 2))
    assert parity.argmax_agreement == pytest.approx(0.95)
    assert parity.per_class_iou == {0: pytest.approx(45 / 50), 1: pytest.approx(50 / 55)}
    assert parity.min_class_iou == pytest.approx(0.9)
    failures = judge(parity, PRESETS[Precision.int8])
    assert failures == ["argmax agreement 95.0000% < 98.0000%"]


def test_sigmoid_outputs_are_labelled_by_their_probability():
    # Both maps are positive everywhere: a sign test would call them equal. They are not.
    all_foreground = np.full((1, 16, 16), 0.9, np.float32)
    all_background = np.full((1, 16, 16), 0.1, np.float32)
    parity = compare_outputs(all_foreground, all_background, "sigmoid")
    assert parity.argmax_agreement == 0.0
    assert judge(parity, PRESETS[Precision.int8])[0].startswith("argmax agreement 0.0000%")
    # The same numbers read as logits (sigmoid(0.9) and sigmoid(0.1) are both > 0.5) do agree.
    assert compare_outputs(all_foreground, all_background, "logit").argmax_agreement == 1.0
    # The threshold is the card's: at 0.05 both maps are foreground.
    assert compare_outputs(all_foreground, all_background, "sigmoid", threshold=0.05).argmax_agreement == 1.0


def test_non_finite_outputs_fail_whatever_the_tolerance():
    x = np.ones((3, 4, 4), np.float32)
    broken = x.copy()
    broken[0, 0, 0] = np.nan
    parity = compare_outputs(x, broken)
    assert not parity.finite and math.isinf(parity.max_abs)
    loose = PRESETS[Precision.int8].with_overrides(min_agreement=0.0)
    assert judge(parity, loose) == ["outputs are not all finite"]


def test_fp32_preset_bounds_the_error_by_the_logits_range():
    reference = np.random.default_rng(1).standard_normal((4, 6, 6)).astype(np.float32)
    spread = float(reference.max() - reference.min())
    nudged = reference + np.float32(0.5e-4 * spread)
    assert judge(compare_outputs(reference, nudged), PRESETS[Precision.fp32]) == []
    pushed = reference + np.float32(2e-4 * spread)
    failures = judge(compare_outputs(reference, pushed), PRESETS[Precision.fp32])
    assert len(failures) == 1 and failures[0].startswith("max abs error")
    assert judge(compare_outputs(reference, pushed), PRESETS[Precision.fp32].with_overrides(rtol=1e-3)) == []


def test_streaming_equals_one_batch_and_masks_give_miou():
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((3, 4, 12, 12)).astype(np.float32)
    candidate = reference + rng.normal(0, 0.3, reference.shape).astype(np.float32)
    masks = reference.argmax(1).astype(np.uint8)
    masks[:, 0, :] = 255  # ignored
    whole = ParityAccumulator(4)
    whole.add(reference, candidate, masks)
    streamed = ParityAccumulator(4)
    for i in range(3):
        streamed.add(reference[i], candidate[i], masks[i])
    a, b = whole.result(), streamed.result()
    assert a.images == b.images == 3
    assert a.argmax_agreement == b.argmax_agreement and a.per_class_iou == b.per_class_iou
    assert a.sqnr_db == pytest.approx(b.sqnr_db) and a.max_abs == b.max_abs
    assert a.miou_reference == 1.0  # the masks are the reference's own labels
    assert a.miou is not None and a.miou < 1.0 and a.miou_drop_points == pytest.approx(100 * (1.0 - a.miou))


def test_outputs_of_different_shapes_are_a_parity_error():
    with pytest.raises(ParityError, match="differ in shape"):
        compare_outputs(np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 5), np.float32))


def test_check_sizes_and_measure_images_run_both_models():
    card = ModelCard(name="t", classes=("a", "b", "c"))
    weights = np.random.default_rng(3).standard_normal((3, 3)).astype(np.float32)

    def reference(x):  # a per-pixel linear classifier: 3 channels in, 3 classes out
        return np.einsum("kc,nchw->nkhw", weights, x)

    def candidate(x):
        return reference(x) * 1.01  # scaled logits keep every argmax

    checks = check_sizes(reference, candidate, card, [(17, 23), (8, 8)], PRESETS[Precision.int8], batch=2)
    assert [c.label for c in checks] == ["2x17x23", "2x8x8"] and all(c.passed for c in checks)
    assert checks[0].size == (17, 23) and checks[0].parity.images == 2
    image = (np.random.default_rng(4).uniform(0, 255, (21, 30, 3))).astype(np.uint8)
    parity = measure_images(reference, candidate, card, [(image, None)], "one image")
    assert parity.images == 1 and parity.argmax_agreement == 1.0 and parity.source == "one image"


def test_sample_input_is_seeded_and_normalised():
    card = ModelCard(name="t")
    x, again = sample_input(card, 2, (20, 24), seed=5), sample_input(card, 2, (20, 24), seed=5)
    assert x.shape == (2, 3, 20, 24) and x.dtype == np.float32 and np.array_equal(x, again)
    assert -2.2 < x.min() and x.max() < 2.7  # ImageNet normalisation of 0..255 pixels
