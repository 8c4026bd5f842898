"""Running an artefact here and comparing it with the fp32 ONNX file it was made from.

`compare` is the one place the comparison happens: segedge's parity judge (`runtimes.measure.parity`:
`ParityAccumulator`, `judge`, the precision's preset) over the images, one pair of outputs in
memory at a time, labels made by the card's output kind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from runtimes.backends.messages import runtime_reason
from runtimes.model.card import ModelCard
from runtimes.errors import ModelFileError
from runtimes.measure.parity import ParityAccumulator, judge, preset
from runtimes.backends.onnxruntime_session import session_options

from .result import Verification

Runner = Callable[[np.ndarray], np.ndarray]  # 1 x 3 x H x W float32 -> 1 x C x h x w float32


def ort_runner(path: Path, threads: int | None = None) -> Runner:
    """`path` (.onnx or .ort) on ONNX Runtime's CPU provider."""
    try:
        session = ort.InferenceSession(os.fspath(path), sess_options=session_options(threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own exception types per failure kind)
        raise ModelFileError(f"{path.name}: ONNX Runtime's CPU provider cannot load it: {runtime_reason(exc)}") from None
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(session.run([output], {name: batch})[0], dtype=np.float32)

    return run


def compare(reference: Runner, candidate: Runner, inputs: Iterable[np.ndarray], *, card: ModelCard,
            precision: str, runtime: str, reference_name: str, image_source: str) -> Verification:
    """Run both on every 3 x H x W input; judged by `precision`'s preset."""
    accumulator = ParityAccumulator(card.num_classes or None, card.output_kind, card.threshold)
    for x in inputs:
        accumulator.add(reference(x[None]), candidate(x[None]))
    parity = accumulator.result(image_source)
    failures = judge(parity, preset(precision))
    return Verification(runtime=runtime, reference=reference_name, preset=precision, parity=parity,
                        failures=tuple(failures))
