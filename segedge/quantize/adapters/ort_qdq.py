"""ONNX Runtime's QDQ quantizer as a repair backend: layers kept in float (`nodes_to_exclude`).

Every variant is `exporters.int8.quantize_int8`, the quantizer `segedge quantize` runs; the
activation ranges of each calibration method are computed once and kept in a file in the work
folder (ORT's `calibration_cache_path`), so a sensitivity ranking over 24 blocks costs one
calibration pass, not 24. Units are read from the graph ORT's pre-processing makes, whose node
names the quantizer sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from exporters.int8 import preprocess, quantize_int8
from exporters.int8_options import Method
from runtimes.model.card import ModelCard
from runtimes.backends.onnxruntime_session import open_session
from segedge.quantize.adapters.base import Candidate, RunBatch
from segedge.quantize.layers import Unit, units

PER_CHANNEL, PER_TENSOR = "per-channel", "per-tensor"
METHODS = (Method.minmax, Method.percentile, Method.entropy)  # the repair's order (issue 30)


class OrtQdq:
    runtime = "onnxruntime"
    higher = "float"

    def __init__(self, source: Path, calib: Path, count: int, card: ModelCard, work: Path, *,
                 method: Method = Method.minmax, per_channel: bool = True, exclude: tuple[str, ...] = (),
                 overrides: dict[str, Any] | None = None) -> None:
        self.source, self.calib, self.count, self.card, self.work = source, calib, count, card, work
        self.overrides = overrides or {}
        self.exclude = exclude  # the user's own --exclude: kept in every variant
        self.methods = tuple(dict.fromkeys([method.value, *(m.value for m in METHODS)]))
        first = PER_CHANNEL if per_channel else PER_TENSOR
        self.weight_schemes = tuple(dict.fromkeys([first, PER_CHANNEL]))  # per-channel is ORT's finer option
        self.start = Candidate(method.value, first)
        self._cached: set[str] = set()

    @property
    def calibrations(self) -> int:
        return len(self._cached)

    def units(self) -> list[Unit]:
        prepared = self.work / "ort-prepared.onnx"
        if not prepared.exists():
            preprocess(self.source, prepared)
        found = units(onnx.load(str(prepared), load_external_data=False))
        return [u for u in found if not set(u.layers) <= set(self.exclude)]

    def build(self, candidate: Candidate, target: Path) -> Path:
        self._cached.add(candidate.method)
        quantize_int8(self.source, target, self.calib, count=self.count, method=candidate.method,
                      per_channel=candidate.weights == PER_CHANNEL,
                      exclude=tuple(dict.fromkeys([*self.exclude, *candidate.kept])), card=self.card,
                      calibration_cache=self.work / f"ort-ranges-{candidate.method}.json")
        return target

    def runner(self, path: Path) -> RunBatch:
        return open_session(path, "cpu", overrides=self.overrides).run

    def reproduce(self, candidate: Candidate) -> str:
        flags = [f"--method {candidate.method}", "--per-channel" if candidate.weights == PER_CHANNEL else "--per-tensor"]
        kept = [*self.exclude, *candidate.kept]
        if kept:
            flags.append("--exclude " + ",".join(dict.fromkeys(kept)))
        return " ".join(flags)
