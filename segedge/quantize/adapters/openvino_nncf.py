"""NNCF for OpenVINO as a repair backend: layers kept in float through NNCF's ignored scope.

Variants are `exporters.nncf_int8.quantize_nncf`, the quantizer `quantize --for openvino` runs.
NNCF computes its statistics again for every variant (it has no range cache to hand over), so a
ranking here costs one calibration pass per variant: stated in the result's `calibrations`. Its
activation ranges are fixed at min/max (segedge's choice, see `exporters.nncf_int8`), so the
calibration step has one method; the weight-scheme step is NNCF's preset: `performance`
(symmetric activations) then `mixed` (asymmetric ones). Units are read from the OpenVINO model
NNCF quantizes: its op names are what the ignored scope takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporters.nncf_int8 import quantize_nncf
from runtimes.model.card import ModelCard
from runtimes.backends.openvino_session import import_openvino
from runtimes.backends.selection import Runtime, open_model
from segedge.quantize.adapters.base import Candidate, RunBatch
from segedge.quantize.layers import Unit, units_of

WEIGHTED_OV = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")
CONSTANT_SOURCES = ("Constant", "Convert")


class NncfOpenVINO:
    runtime = "openvino"
    higher = "float"
    methods: tuple[str, ...] = ("minmax",)
    weight_schemes: tuple[str, ...] = ("performance", "mixed")

    def __init__(self, source: Path, calib: Path, count: int, card: ModelCard, work: Path, *,
                 exclude: tuple[str, ...] = (), overrides: dict[str, Any] | None = None) -> None:
        self.source, self.calib, self.count, self.card, self.work = source, calib, count, card, work
        self.exclude, self.overrides = exclude, overrides or {}
        self.start = Candidate("minmax", "performance")
        self.calibrations = 0

    def units(self) -> list[Unit]:
        core = import_openvino().Core()
        model = core.read_model(str(self.source))
        # Ops the ONNX file does not name (a ConvTranspose's bias Add, shape paths) get a counter's name that
        # differs in every read, and NNCF reads the file again: only names two reads agree on can be excluded.
        stable = {op.get_friendly_name() for op in core.read_model(str(self.source)).get_ordered_ops()}
        weighted, following = [], {}
        for op in model.get_ordered_ops():
            name = op.get_friendly_name()
            following[name] = [t.get_node().get_friendly_name() for out in op.outputs() for t in out.get_target_inputs()
                               if t.get_node().get_type_name() != "ShapeOf"]  # shape paths: names differ per read
            sources = [i.get_source_output().get_node().get_type_name() for i in op.inputs()]
            if op.get_type_name() in WEIGHTED_OV and any(s in CONSTANT_SOURCES for s in sources[1:2]):
                weighted.append(name)
        found = units_of([w for w in weighted if w in stable], following)
        return [Unit(u.name, tuple(n for n in u.nodes if n in stable), u.layers) for u in found
                if u.name not in self.exclude]

    def build(self, candidate: Candidate, target: Path) -> Path:
        self.calibrations += 1
        quantize_nncf(self.source, target, self.calib, card=self.card, count=self.count,
                      exclude=tuple(dict.fromkeys([*self.exclude, *candidate.kept])), preset=candidate.weights)
        return target

    def runner(self, path: Path) -> RunBatch:
        return open_model(path, Runtime.openvino, "cpu", None, overrides=self.overrides).run

    def reproduce(self, candidate: Candidate) -> str:
        kept = [*self.exclude, *candidate.kept]
        return "--for openvino" + (f" --exclude {','.join(dict.fromkeys(kept))}" if kept else "") + \
            ("" if candidate.weights == "performance" else f"  (NNCF preset {candidate.weights}: library only)")
