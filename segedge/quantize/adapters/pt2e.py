"""ExecuTorch's PT2E quantizer (XNNPACKQuantizer) as a repair backend: layers kept in float.

Variants are `exporters.targets.executorch.quantized`, the quantizer `export --target executorch
--precision int8` runs, lowered to XNNPACK by `exporters.targets.executorch.lower` and run by
ExecuTorch's runtime: each candidate is the .pte a phone would run. A kept layer is left out of the
quantizer's annotation (its filter function, by node of the exported graph), so XNNPACK runs it in
fp32 between int8 partitions. Units are read from that exported graph (`torch.export`'s node names,
which every export of the same model repeats) and named by the module each weighted node belongs
to, so `kept_layers` reads as the model's own names (`decoder.conv2`).

The calibration step has the quantizer's two activation observers: HistogramObserver (its
default, which minimises the rounding error) then min/max; weights are per-channel symmetric
(XNNPACK's finer scheme; per-tensor would only be coarser). PT2E keeps no ranges to reuse between
variants: every variant calibrates again, stated in the result's `calibrations`.

`repairing_pt2e` plugs the repair into `exporters.targets.from_torch.build_from_torch`: `export
--target executorch --precision auto` writes the int8 program the search chose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from exporters.targets.executorch import OBSERVERS, dynamic_shapes, graph_nodes, lower, quantized
from exporters.targets.from_torch import Repairer
from exporters.torch_to_onnx import LogitsOnly
from runtimes.backends.executorch_session import open_executorch
from runtimes.guards.fileio import work_folder
from runtimes.model.card import ModelCard
from segedge.quantize.adapters.base import Candidate, RunBatch
from segedge.quantize.convert import SampleSource
from segedge.quantize.judging import budget_judge
from segedge.quantize.layers import Unit, units_of
from segedge.quantize.repair import repair

# aten ops XNNPACKQuantizer annotates with weights: the units' leaders
WEIGHTED_ATEN = ("conv1d", "conv2d", "convolution", "conv_transpose1d", "conv_transpose2d", "linear")
PER_CHANNEL = "per-channel"


class Pt2eExecuTorch:
    runtime = "executorch"
    higher = "float"
    weight_schemes: tuple[str, ...] = (PER_CHANNEL,)

    def __init__(self, model: nn.Module, card: ModelCard, size: tuple[int, int], calibration: Sequence[np.ndarray],
                 work: Path, *, side_range: tuple[int, int] | None = None, observer: str = OBSERVERS[0],
                 threads: int | None = None) -> None:
        """`model`: eval mode, logits out; `calibration`: model inputs (3 x H x W) prepared as the Predictor
        prepares them; `side_range`: the program's dynamic sides' bounds (None: a static program at `size`)."""
        self.model, self.card, self.size, self.work = model, card, size, work
        self.calibration, self.threads = list(calibration), threads
        self.shapes = dynamic_shapes(card.size_divisor, side_range)
        self.methods = tuple(dict.fromkeys([observer, *OBSERVERS]))
        self.start = Candidate(observer, PER_CHANNEL)
        self.calibrations = 0
        # module paths as the user's model names them: under exporters.targets.executorch's wrapper (`model.`)
        # and, for a model rebuilt from a card or prepared for export, exporters' LogitsOnly (`model.` again)
        self.prefix = "model.model." if isinstance(model, LogitsOnly) else "model."
        self.record: dict[str, Any] = {"target": "executorch", "quantizer": "pt2e",
                                       "side_range": list(side_range) if side_range else None}

    def units(self) -> list[Unit]:
        graph = graph_nodes(self.model, self.size, self.shapes)
        weighted, following, names = [], {}, {}
        for node in graph.nodes:
            following[node.name] = [user.name for user in node.users]
            if node.op == "call_function" and _aten_name(node.target) in WEIGHTED_ATEN:
                weighted.append(node.name)
                names[node.name] = _module_of(node, self.prefix) or node.name
        found = units_of(weighted, following)
        taken: dict[str, int] = {}
        for u in found:  # a module called twice: its second call named by its node
            taken[names[u.name]] = taken.get(names[u.name], 0) + 1
        return [Unit(names[u.name] if taken[names[u.name]] == 1 else u.name, u.nodes,
                     (names[u.name] if taken[names[u.name]] == 1 else u.name,)) for u in found]

    def build(self, candidate: Candidate, target: Path) -> Path:
        self.calibrations += 1
        program = quantized(self.model, self.size, self.shapes, self.calibration, observer=candidate.method,
                            kept=candidate.kept)
        card = self.card.with_overrides(precision="int8", runtime="executorch", input_size=self.size,
                                        dynamic=self.shapes is not None, calibration={"method": candidate.method})
        target.write_bytes(lower(program, self.size, self.shapes, card.to_json(), self.record).program)
        return target

    def reference(self, target: Path) -> Path:
        """The fp32 program the candidates are judged against: the same model and shapes on the same runtime."""
        card = self.card.with_overrides(precision="fp32", runtime="executorch", input_size=self.size,
                                        dynamic=self.shapes is not None)
        target.write_bytes(lower(self.model, self.size, self.shapes, card.to_json(), self.record).program)
        return target

    def runner(self, path: Path) -> RunBatch:
        return open_executorch(path, self.threads).run

    def reproduce(self, candidate: Candidate) -> str:
        kept = f", kept={list(candidate.kept)!r}" if candidate.kept else ""
        return f"exporters.targets.executorch.quantized(observer={candidate.method!r}{kept})"


def _aten_name(target: Any) -> str:
    """`aten.conv2d.default` -> `conv2d`; other targets (getattr, Python callables) -> their text."""
    text = str(target)
    return text.split(".")[1] if text.startswith("aten.") else text


def _module_of(node: Any, prefix: str) -> str | None:
    """The innermost module a node of the exported graph was traced in, by its name in the user's model."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    return str(list(stack.values())[-1][0]).removeprefix(prefix) or None


def repairing_pt2e(card: ModelCard, samples: SampleSource, budget: float,
                   progress: Callable[[str], None] = lambda message: None) -> Repairer:
    """`exporters.targets.from_torch`'s repair for `export --target executorch --precision auto`: the search
    (`segedge.quantize.repair`) on the program the target will write (its size and dynamic shapes), each
    candidate judged against that program in fp32 on `samples` (labelled: mIoU points), within `budget`."""

    def search(model: nn.Module, size: tuple[int, int], side_range: tuple[int, int] | None,
               calibration: list[np.ndarray]) -> dict[str, Any]:
        view = card.with_overrides(input_size=size, dynamic=side_range is not None)
        with work_folder("segedge-pt2e-repair-") as folder:
            work = Path(folder)
            adapter = Pt2eExecuTorch(model, view, size, calibration, work, side_range=side_range)
            judge = budget_judge(adapter.runner(adapter.reference(work / "fp32.pte")), view, samples, budget)
            result = repair(adapter, judge, sum(1 for _ in samples[0]()), work, progress)
        best = result.best.candidate
        return {"observer": best.method, "kept": list(best.kept), "repair": result.record()}

    return search
