"""Which layers int8 costs: each unit kept alone in the runtime's higher precision, measured the way it is judged.

For every unit of the graph (`segedge.quantize.layers`: a weighted node and what its result flows
through, or a block of them when the graph has more than `most`), the candidate `base` with that
unit kept higher (float on ONNX Runtime and OpenVINO, 16-bit weights on QNN) is built and measured
on the comparison images: mIoU points lost with labels, else argmax-agreement points. The units are
ranked by what keeping each recovers, most first: the order the repair keeps them in.

Cost, stated in the result: len(units) + 1 variants, each run on every comparison image; the
activation ranges come from one calibration pass per method (the adapter reuses them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtimes.errors import ExportError
from segedge.quantize.adapters.base import Adapter, Candidate, Judge, Measured, artefact_suffix, finite
from segedge.quantize.layers import Unit, blocks

Progress = Callable[[str], None]
MOST_UNITS = 24  # variants a ranking may build: a larger graph is ranked per block


@dataclass(frozen=True)
class Row:
    unit: Unit
    measured: Measured  # the candidate with this unit alone kept higher
    recovered: float  # points it wins back against `base`

    def to_dict(self) -> dict:
        return {**self.unit.to_dict(), **self.measured.to_dict(), "recovered_points": finite(self.recovered)}


@dataclass(frozen=True)
class Sensitivity:
    runtime: str
    higher: str
    base: Candidate
    base_measured: Measured
    rows: tuple[Row, ...]  # most recovered first
    layers: int  # weighted nodes in the graph
    images: int  # comparison images per variant
    calibrations: int
    seconds: float

    @property
    def variants(self) -> int:
        return len(self.rows) + 1

    @property
    def per_block(self) -> bool:
        return any(len(r.unit.layers) > 1 for r in self.rows)

    @property
    def cost(self) -> str:
        what = f"{len(self.rows)} blocks of {self.layers} layers" if self.per_block else f"{len(self.rows)} layers"
        return (f"{what}: {self.variants} variants x {self.images} images = {self.variants * self.images} model runs, "
                f"{self.calibrations} calibration pass(es), {self.seconds:.0f} s")

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "kept_as": self.higher, "base": self.base.to_dict(),
                "base_measured": self.base_measured.to_dict(), "layers": self.layers, "per_block": self.per_block,
                "variants": self.variants, "images": self.images, "model_runs": self.variants * self.images,
                "calibration_passes": self.calibrations, "seconds": round(self.seconds, 1), "cost": self.cost,
                "rows": [r.to_dict() for r in self.rows]}


def rank(adapter: Adapter, base: Candidate, base_measured: Measured, judge: Judge, images: int, work: Path,
         progress: Progress = lambda message: None, most: int = MOST_UNITS) -> Sensitivity:
    """Every unit (or block) of `adapter`'s graph kept alone higher than `base`, ranked by what it recovers."""
    start = time.perf_counter()
    found = adapter.units()
    ranked = blocks(found, most)
    rows = []
    for i, unit in enumerate(ranked, 1):
        progress(f"sensitivity {i}/{len(ranked)}: {unit.name} in {adapter.higher}")
        target = work / f"sensitivity-{i}{artefact_suffix(adapter)}"
        try:
            result = judge(adapter.runner(adapter.build(base.keeping((unit,)), target)))
        except ExportError as exc:  # this variant cannot be built: ranked last, with why
            result = Measured(float("inf"), False, 0.0, None, {"failed": str(exc)})
        _remove(target)
        rows.append(Row(unit, result, base_measured.lost - result.lost))
    rows.sort(key=lambda r: (r.measured.lost, len(r.unit.nodes)))  # ties: the smaller unit first
    return Sensitivity(adapter.runtime, adapter.higher, base, base_measured, tuple(rows), len(found), images,
                       adapter.calibrations, time.perf_counter() - start)


def _remove(path: Path) -> None:
    for p in (path, path.with_suffix(".bin")):
        p.unlink(missing_ok=True)
