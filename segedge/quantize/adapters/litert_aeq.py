"""LiteRT's quantizer (ai-edge-quantizer, on litert-torch's float file) as a repair backend: ops kept in float.

Variants are `exporters.targets.litert.static_int8`, the quantizer `export --target litert --precision
int8` runs, on one float .tflite converted once: each candidate is the file a phone would run, judged
on ai-edge-litert's interpreter with XNNPACK. A kept layer is left out of the recipe (its ops' scopes
get ai-edge-quantizer's `no_quantize`), so LiteRT runs it in fp32 between int8 partitions; the float
ops then leave XNNPACK's int8 partitions, which is the speed the report's row shows.

Units are read from that float file: one per weighted op (CONV_2D, DEPTHWISE_CONV_2D,
TRANSPOSE_CONV, FULLY_CONNECTED, BATCH_MATMUL) with the ops its result flows through to the next
weighted ops, each op named by its scope (its output tensors' names, which every conversion of the
same model repeats, so a choice made at one size applies at another).

ai-edge-quantizer's static recipe calibrates min/max ranges only, with per-channel int8 weights:
the search has no calibration or weight step to try before keeping layers in float. One calibration
pass serves every variant (its ranges do not depend on what stays float).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from exporters.targets.from_torch import Repairer
from exporters.torch_to_onnx import LogitsOnly
from exporters.targets.litert import calibrated, float_flatbuffer, module_paths, op_graph, static_int8, with_card
from runtimes.backends.litert_session import open_litert
from runtimes.guards.fileio import work_folder
from runtimes.model.card import ModelCard
from segedge.quantize.adapters.base import Candidate, RunBatch
from segedge.quantize.convert import SampleSource
from segedge.quantize.judging import budget_judge
from segedge.quantize.layers import Unit, units_of
from segedge.quantize.repair import repair

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL")
MIN_MAX = "min-max"
PER_CHANNEL = "per-channel"


class AeqLiteRT:
    runtime = "litert"
    higher = "float"
    methods: tuple[str, ...] = (MIN_MAX,)
    weight_schemes: tuple[str, ...] = (PER_CHANNEL,)
    start = Candidate(MIN_MAX, PER_CHANNEL)

    def __init__(self, model: nn.Module, card: ModelCard, size: tuple[int, int], calibration: Sequence[np.ndarray],
                 work: Path, *, threads: int | None = None) -> None:
        """`model`: eval mode, logits out; `calibration`: model inputs (3 x H x W) prepared as the Predictor
        prepares them; `card.layout` NHWC: the files take channels-last input (the ops' scopes differ from an
        NCHW conversion's, so a search runs on the layout the target writes). The float file is converted
        here, once."""
        self.card, self.size, self.work, self.threads = card, size, work, threads
        self.nhwc = card.layout == "NHWC"
        self.float = float_flatbuffer(model, size, nhwc=self.nhwc)
        # module names as the user's model has them: a model rebuilt from a card is under exporters' LogitsOnly
        prefix = "model." if isinstance(model, LogitsOnly) else ""
        self.modules = {path: name.removeprefix(prefix) for path, name in module_paths(model).items()}
        self._calibration = list(calibration)
        self._ranges: dict[str, Any] | None = None
        self.calibrations = 0
        self.record: dict[str, Any] = {"target": "litert", "quantizer": "ai-edge-quantizer"}

    def units(self) -> list[Unit]:
        """Units of the float file's ops, each named by the model's module its weighted op came from (its scope
        where no module is named, or the module made more than one weighted op)."""
        graph = op_graph(self.float)
        weighted = [scope for scope, kind in zip(graph.scopes, graph.kinds) if kind in WEIGHTED_OPS]
        found = units_of(weighted, graph.following)
        modules = [self._module_at(graph.locations[u.name]) for u in found]
        names = [m if m and modules.count(m) == 1 else u.name for u, m in zip(found, modules)]
        return [Unit(name, u.nodes, (name,)) for name, u in zip(names, found)]

    def _module_at(self, location: str) -> str:
        """The model's module at litert-torch's `location`, below any wrapper steps it starts with (the NHWC
        conversion's ChannelLastIOWrapper and the model it wraps); "" where none is found."""
        steps = location.split("/")
        return next((name for i in range(len(steps)) if (name := self.modules.get("/".join(steps[i:])))), "")

    def build(self, candidate: Candidate, target: Path) -> Path:
        if self._ranges is None:
            self.calibrations += 1
            self._ranges = calibrated(self.float, self._calibration, nhwc=self.nhwc)
        card = self.card.with_overrides(precision="int8", runtime="litert", input_size=self.size, dynamic=False,
                                        calibration={"method": candidate.method})
        target.write_bytes(with_card(static_int8(self.float, self._ranges, candidate.kept), card.to_json(),
                                     self.record))
        return target

    def reference(self, target: Path) -> Path:
        """The fp32 file the candidates are judged against: the same conversion on the same runtime."""
        card = self.card.with_overrides(precision="fp32", runtime="litert", input_size=self.size, dynamic=False)
        target.write_bytes(with_card(self.float, card.to_json(), self.record))
        return target

    def runner(self, path: Path) -> RunBatch:
        return open_litert(path, self.threads).run

    def reproduce(self, candidate: Candidate) -> str:
        # the op scopes are long (every location litert-torch fused into the op): they are the step's kept_nodes
        kept = f", kept=<kept_nodes: the {len(candidate.kept)} ops of {', '.join(candidate.kept_layers)}>" \
            if candidate.kept else ""
        return f"exporters.targets.litert.static_int8(float file, calibrated(float file, images){kept})"


def repairing_litert(card: ModelCard, samples: SampleSource, budget: float,
                     progress: Callable[[str], None] = lambda message: None) -> Repairer:
    """`exporters.targets.from_torch`'s repair for `export --target litert --precision auto`: the search
    (`segedge.quantize.repair`) on the static file the target writes, each candidate judged against that
    file in fp32 on `samples` (labelled: mIoU points), within `budget`."""

    def search(model: nn.Module, size: tuple[int, int], side_range: tuple[int, int] | None,
               calibration: list[np.ndarray]) -> dict[str, Any]:
        view = card.with_overrides(input_size=size, dynamic=False)
        with work_folder("segedge-litert-repair-") as folder:
            work = Path(folder)
            adapter = AeqLiteRT(model, view, size, calibration, work)
            judge = budget_judge(adapter.runner(adapter.reference(work / "fp32.tflite")), view, samples, budget)
            result = repair(adapter, judge, sum(1 for _ in samples[0]()), work, progress)
        return {"kept": list(result.best.candidate.kept), "repair": result.record()}

    return search
