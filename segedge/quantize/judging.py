"""How a quantized candidate is judged: points lost against fp32 on the comparison images.

mIoU points against the labels when the images have them, else points of argmax agreement with
fp32; a candidate is within budget when it loses at most `budget` of them. The same judge ranks
layers (`segedge.quantize.sensitivity`), drives the repair (`segedge.quantize.repair`) and the
precision search (`segedge.quantize.search`).
"""

from __future__ import annotations

from collections.abc import Callable

from runtimes.model.card import ModelCard
from runtimes.measure.parity import Parity, measure_images
from segedge.quantize.adapters.base import Judge, Measured, RunBatch
from segedge.quantize.convert import SampleSource


def lost_points(agreement: Parity) -> float:
    """mIoU points lost against the labels when there are labels, else argmax-agreement points."""
    drop = agreement.miou_drop_points
    return drop if drop is not None else 100.0 * (1.0 - agreement.argmax_agreement)


def measured(parity: Parity, ok: Callable[[float], bool]) -> Measured:
    lost = lost_points(parity) if parity.finite else float("inf")
    return Measured(lost, ok(lost), parity.argmax_agreement, parity.miou,
                    {"miou_reference": parity.miou_reference, "sqnr_db": parity.sqnr_db if parity.finite else None},
                    parity)


def budget_judge(reference: RunBatch, card: ModelCard, samples: SampleSource, budget: float) -> Judge:
    """Each candidate measured against the fp32 `reference` on `samples`; within budget at <= `budget` points."""
    produce, description = samples

    def judge(run: RunBatch) -> Measured:
        return measured(measure_images(reference, run, card, produce(), description), lambda lost: lost <= budget)

    return judge
