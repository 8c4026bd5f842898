"""`segedge verify MODEL.mlpackage`: the Core ML package against the PyTorch model it was converted from.

Runs only where Core ML does (macOS, with coremltools' prediction library); elsewhere it stops with
the reason before any work. Both sides get the same generated images: the package takes their
0..255 RGB pixels (it normalises inside), PyTorch the card's normalisation of them. Judged with the
preset of the package's precision (fp32, fp16, int8) on the logits and label maps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from exporters.targets.coreml_quiet import can_predict, coremltools, silenced
from exporters.targets.images import synthetic_images
from exporters.targets.mlpackage import INPUT_NAME, OUTPUT_NAME
from exporters.targets.mlpackage_spec import read_mlpackage
from runtimes.errors import CardError, ProviderError
from runtimes.measure.parity import ParityAccumulator, ParityCheck, judge, preset
from runtimes.imaging.preprocess import normalize
from segedge.parity.reference import reference_model, torch_runner
from segedge.parity.run import other_size

IMAGES = 4


def verify_mlpackage(path: Path, weights: str | os.PathLike[str] | None = None,
                     sizes: list[tuple[int, int]] | None = None,
                     progress: Callable[[str], None] = lambda message: None) -> list[ParityCheck]:
    runs, why = can_predict()
    if not runs:
        raise ProviderError(f"not verified: {why}; run `segedge verify {path}` on a Mac")
    info = read_mlpackage(path)
    card = info.card
    if card is None:
        raise CardError(f"{path} has no segedge card in its user metadata: it was not exported by segedge")
    reference = torch_runner(reference_model(card, weights, progress)[0])
    ct = coremltools()
    with silenced():
        package = ct.models.MLModel(os.fspath(path))
    tolerance = preset(card.precision)
    sizes = sizes or [card.input_size, *([other_size(card, card.input_size)] if card.dynamic else [])]
    checks = []
    for h, w in sizes:
        progress(f"running {IMAGES} images of {h}x{w} on Core ML and PyTorch")
        accumulator = ParityAccumulator(card.num_classes or None, card.output_kind, card.threshold)
        for rgb in synthetic_images(IMAGES, (h, w)):
            expected = reference(normalize(rgb, card)[None])
            got = package.predict({INPUT_NAME: Image.fromarray(rgb)})[OUTPUT_NAME]
            accumulator.add(expected, np.asarray(got, dtype=np.float32))
        parity = accumulator.result(f"{IMAGES} generated images {h}x{w}")
        checks.append(ParityCheck(f"{IMAGES}x{h}x{w}", "Core ML (all compute units)", parity,
                                  tuple(judge(parity, tolerance)), (h, w), 1))
    return checks
