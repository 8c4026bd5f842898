"""ORT's QNN quantization config as a repair backend: uint16 activations already, so a kept layer gets 16-bit weights.

QNN's HTP runs fixed point only: the higher precision it offers a layer is 16-bit (w16a16 where
the rest is w8a16), not float. Variants are `exporters.targets.qnn.quantize_for_qnn`, each
calibration method's ranges computed once (ORT's calibration_cache_path). The weight schemes are
ORT's documented uint8 and signed symmetric int8: ORT widens a weight's scale to keep the int32
bias in range only for the latter (docs/targets.md: LR-ASPP 11.6% vs 99.63% agreement).

`repairing_quantizer` plugs the repair into `exporters.targets.build_for_target`: the QNN target
quantizes with the repair search, judged by the target's own check (the int8 preset on the
verification images), when the caller named no weight type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from exporters.calibration import spread
from exporters.targets.images import model_input
from exporters.targets.qnn import quantize_for_qnn
from exporters.targets.verify import ort_runner
from runtimes.model.card import ModelCard
from runtimes.imaging.image import load_image
from runtimes.measure.parity import ParityAccumulator, judge as judge_preset, preset
from segedge.quantize.adapters.base import Candidate, Judge, Measured, RunBatch
from segedge.quantize.layers import Unit, weighted_nodes
from segedge.quantize.repair import repair

METHODS = ("minmax", "percentile", "entropy")
WEIGHTS = ("uint8", "int8")
VERIFY_IMAGES = 8  # as exporters.targets.build verifies


class QnnQdq:
    runtime = "qnn"
    higher = "16-bit weights"

    def __init__(self, source: Path, images: Sequence[Path], card: ModelCard, size: tuple[int, int], work: Path, *,
                 activations: str = "uint16", weights: str = "uint8", method: str = "minmax") -> None:
        self.source, self.images, self.card, self.size, self.work = source, list(images), card, size, work
        self.activations = activations
        self.methods = tuple(dict.fromkeys([method, *METHODS]))
        self.weight_schemes = tuple(dict.fromkeys([weights, *WEIGHTS]))
        self.start = Candidate(method, weights)
        self._cached: set[str] = set()
        self.facts: dict[str, Any] = {}

    @property
    def calibrations(self) -> int:
        return len(self._cached)

    def units(self) -> list[Unit]:
        import onnx

        model = onnx.load(str(self.source), load_external_data=False)
        return [Unit(n.name, (n.name,), (n.name,)) for n in weighted_nodes(model)]

    def build(self, candidate: Candidate, target: Path) -> Path:
        self._cached.add(candidate.method)
        folder = self.work / f"qnn-{len(list(self.work.glob('qnn-*')))}"
        folder.mkdir()
        self.facts[str(target)] = quantize_for_qnn(
            self.source, target, self.images, self.card, size=self.size, activations=self.activations,
            weights=candidate.weights, workdir=folder, method=candidate.method, wide_weights=candidate.kept,
            calibration_cache=self.work / f"qnn-ranges-{candidate.method}.json")
        return target

    def runner(self, path: Path) -> RunBatch:
        return ort_runner(path)

    def reproduce(self, candidate: Candidate) -> str:
        wide = f", wide_weights={list(candidate.kept)!r}" if candidate.kept else ""
        return f"quantize_for_qnn(method={candidate.method!r}, weights={candidate.weights!r}{wide})"


def preset_judge(reference: RunBatch, inputs: Callable[[], Iterable[np.ndarray]], card: ModelCard,
                 precision: str) -> Judge:
    """Acceptable when the target's check passes: `precision`'s preset on `inputs` (model inputs, 3 x H x W)."""

    def judge(run: RunBatch) -> Measured:
        accumulator = ParityAccumulator(card.num_classes or None, card.output_kind, card.threshold)
        for x in inputs():
            accumulator.add(reference(x[None]), run(x[None]))
        parity = accumulator.result("verification images")
        failures = judge_preset(parity, preset(precision))
        return Measured(100.0 * (1.0 - parity.argmax_agreement) if parity.finite else float("inf"), not failures,
                        parity.argmax_agreement, None, {"failures": failures})

    return judge


def repairing_quantizer(progress: Callable[[str], None] = lambda message: None) -> Callable[..., dict[str, Any]]:
    """A `build_for_target` QNN quantizer that searches until the target's check passes (see the module)."""

    def quantize(source: Path, target: Path, images: Sequence[Path], card: ModelCard, *, size: tuple[int, int],
                 activations: str, weights: str, workdir: Path) -> dict[str, Any]:
        paths = spread(list(images), VERIFY_IMAGES)
        inputs = [model_input(load_image(p), card, size) for p in paths]
        judge = preset_judge(ort_runner(source), lambda: inputs, card, "int8")
        adapter = QnnQdq(source, images, card, size, workdir, activations=activations, weights=weights)
        result = repair(adapter, judge, len(inputs), workdir, progress)
        best = result.best
        best.path.replace(target)
        facts = dict(adapter.facts[str(best.path)])
        facts["repair"] = result.record()
        return facts

    return quantize
