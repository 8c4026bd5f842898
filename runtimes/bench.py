"""Timing inference the way peers do (ORT perf_test, benchmark_app): warm-up, then timed runs.

Several runners are timed in interleaved rounds (A B C A B C ...) so that noise from a shared
machine hits every row alike instead of whichever ran during the noisy minute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import psutil


@dataclass
class Runner:
    """One thing to time: `run(x)` on a prepared input; `setup_s` is what creating it cost."""

    name: str
    runtime: str
    provider: str
    run: Callable[[np.ndarray], object]
    setup_s: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TimingStats:
    name: str
    runtime: str
    provider: str
    batch: int
    runs: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    throughput: float
    first_run_ms: float
    setup_s: float
    memory_mb: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(runner: Runner, latencies_s: Sequence[float], batch: int, first_run_s: float, memory_mb: float) -> TimingStats:
    ms = np.asarray(latencies_s) * 1000.0
    return TimingStats(
        name=runner.name,
        runtime=runner.runtime,
        provider=runner.provider,
        batch=batch,
        runs=len(ms),
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std()),
        p50_ms=float(np.percentile(ms, 50)),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        min_ms=float(ms.min()),
        throughput=float(batch * 1000.0 / ms.mean()) if ms.mean() > 0 else math.inf,
        first_run_ms=first_run_s * 1000.0,
        setup_s=runner.setup_s,
        memory_mb=memory_mb,
        notes=tuple(runner.notes),
    )


def time_runners(
    runners: Sequence[Runner],
    make_input: Callable[[Runner], np.ndarray],
    batch: int,
    warmup: int = 3,
    runs: int = 20,
    on_round: Callable[[int], None] = lambda i: None,
) -> list[TimingStats]:
    """Time every runner on its input: first run, `warmup` untimed runs, then `runs` interleaved rounds.

    `memory_mb` is the growth of this process's resident memory from before the runner's first
    run to the highest value seen right after any of its runs.
    """
    process = psutil.Process()
    inputs = [make_input(r) for r in runners]
    first, base, peak = [], [], []
    for runner, x in zip(runners, inputs):
        base.append(process.memory_info().rss)
        t0 = time.perf_counter()
        runner.run(x)
        first.append(time.perf_counter() - t0)
        for _ in range(warmup):
            runner.run(x)
        peak.append(process.memory_info().rss)
    latencies: list[list[float]] = [[] for _ in runners]
    for i in range(runs):
        for k, (runner, x) in enumerate(zip(runners, inputs)):
            t0 = time.perf_counter()
            runner.run(x)
            latencies[k].append(time.perf_counter() - t0)
            peak[k] = max(peak[k], process.memory_info().rss)
        on_round(i)
    return [
        summarize(r, lat, batch, f, max(0.0, (p - b) / 2**20))
        for r, lat, f, b, p in zip(runners, latencies, first, base, peak)
    ]
