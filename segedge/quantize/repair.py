"""Repair int8 within a budget: the cheapest change to speed first, stopping at the first candidate that passes.

    1. the start (the user's options, plain int8 on this runtime)
    2. the other calibration methods (min-max, percentile, entropy): no cost in speed
    3. the other weight schemes (per-channel; on QNN signed symmetric int8): no cost in speed
    4. layers kept in the runtime's higher precision, one more at a time in the order the
       sensitivity ranking gives (`segedge.quantize.sensitivity`), from the best candidate so far:
       each costs speed, so the first that passes is the smallest prefix of that order

This is NNCF's accuracy-controlled quantization (rank, then give back the most harmful layers one
by one until the metric drop is within the budget) with Polygraphy `debug precision`'s rule of
measuring each change on the real outputs, judged here by mIoU (or argmax agreement without labels)
on the runtime that will run the file. Every step's candidate, measurement and cost is recorded;
the caller times the steps it keeps (`segedge.quantize.search`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from runtimes.errors import ExportError
from segedge.quantize.adapters.base import Adapter, Candidate, Judge, Measured, artefact_suffix, finite
from segedge.quantize.sensitivity import MOST_UNITS, Sensitivity, rank

Progress = Callable[[str], None]
MOST_KEPT = 8  # layer steps at most: past that many units in higher precision, int8 buys little


@dataclass(frozen=True)
class Step:
    name: str  # "start", "calibration: entropy", "weights: per-channel", "2 layers in float"
    candidate: Candidate
    measured: Measured
    path: Path
    seconds: float  # building and measuring it
    reproduce: str  # the options that build it again

    def to_dict(self) -> dict:
        return {"step": self.name, **self.candidate.to_dict(), **self.measured.to_dict(),
                "seconds": round(self.seconds, 1), "reproduce": self.reproduce}


@dataclass(frozen=True)
class Repair:
    runtime: str
    steps: tuple[Step, ...]
    sensitivity: Sensitivity | None  # ranked only when the cheap steps did not pass

    @property
    def chosen(self) -> Step | None:
        """The first step within budget; None when none is."""
        return next((s for s in self.steps if s.measured.ok), None)

    @property
    def best(self) -> Step:
        """The chosen step, else the one that lost least."""
        return self.chosen or min(self.steps, key=lambda s: s.measured.lost)

    def record(self) -> dict:
        """What the card keeps: which layers stay higher and why (what keeping each alone recovered)."""
        best = self.best
        why = {r.unit.name: finite(round(r.recovered, 3)) for r in (self.sensitivity.rows if self.sensitivity else ())
               if r.unit.name in best.candidate.kept_layers}
        return {"runtime": self.runtime, "passed": self.chosen is not None, "step": best.name,
                "kept_layers": list(best.candidate.kept_layers), "kept_nodes": list(best.candidate.kept),
                "recovered_points_alone": why, "reproduce": best.reproduce,
                "steps": [s.to_dict() for s in self.steps],
                "sensitivity_cost": self.sensitivity.cost if self.sensitivity else None,
                "sensitivity": [{"name": r.unit.name, "layers": len(r.unit.layers), "lost_points": finite(r.measured.lost),
                                 "recovered_points": finite(r.recovered)} for r in (self.sensitivity.rows if self.sensitivity else ())]}


def repair(adapter: Adapter, judge: Judge, images: int, work: Path, progress: Progress = lambda message: None, *,
           start: Step | None = None, most_units: int = MOST_UNITS, most_kept: int = MOST_KEPT) -> Repair:
    """Steps 1-4 above, stopping at the first candidate `judge` accepts."""
    steps: list[Step] = []
    suffix = artefact_suffix(adapter)

    def attempt(name: str, candidate: Candidate) -> bool:
        progress(f"repair ({adapter.runtime}): {name}")
        begin = time.perf_counter()
        path = work / f"repair-{len(steps)}{suffix}"
        try:
            result = judge(adapter.runner(adapter.build(candidate, path)))
        except ExportError as exc:  # e.g. a histogram calibration that cannot bin a constant tensor: the next step
            result = Measured(float("inf"), False, 0.0, None, {"failed": str(exc)})
        steps.append(Step(name, candidate, result, path, time.perf_counter() - begin, adapter.reproduce(candidate)))
        return result.ok

    if start is None:
        attempt("start", adapter.start)
        if "failed" in steps[0].measured.details:  # the quantizer cannot make plain int8: nothing to repair from
            raise ExportError(steps[0].measured.details["failed"])
    else:
        steps.append(start)
    if steps[0].measured.ok:
        return Repair(adapter.runtime, tuple(steps), None)
    for method in adapter.methods:
        if method != adapter.start.method and attempt(f"calibration: {method}", replace(adapter.start, method=method)):
            return Repair(adapter.runtime, tuple(steps), None)
    best = min(steps, key=lambda s: s.measured.lost)
    for scheme in adapter.weight_schemes:
        if scheme != best.candidate.weights and attempt(f"weights: {scheme}", replace(best.candidate, weights=scheme)):
            return Repair(adapter.runtime, tuple(steps), None)
    best = min(steps, key=lambda s: s.measured.lost)
    progress(f"ranking layers by what keeping each in {adapter.higher} recovers")
    sensitivity = rank(adapter, best.candidate, best.measured, judge, images, work, progress, most_units)
    order = tuple(r.unit for r in sensitivity.rows)
    for k in range(1, min(most_kept, len(order)) + 1):
        noun = "layer" if k == 1 else "layers"
        if attempt(f"{k} {noun} in {adapter.higher}", best.candidate.keeping(order[:k])):
            break
    return Repair(adapter.runtime, tuple(steps), sensitivity)
