"""Timing inference the way peers do (ORT perf_test, benchmark_app): warm-up, then timed runs.

Several runners are timed in interleaved rounds (A B C A B C ...) so that noise from a shared
machine hits every row alike instead of whichever ran during the noisy minute. A runner that
cannot be built or fails while running becomes a `FailedRun` row with its reason; the others go on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import psutil

from ..errors import SegedgeError
from .machine import process_gpu_memory_mb
from ..backends.onnxruntime_session import ModelSession, as_model_feed


def _identity(x: np.ndarray) -> Any:
    return x


@dataclass
class Runner:
    """One thing to time.

    `prepare(x)` runs once, untimed (e.g. copies the input to the GPU for IO binding), and `run`
    is timed on what it returns. `setup_s` is what creating the runner cost (session creation,
    model build); `compile_s` is a compiler's one-time cost, reported apart from the latency.
    `gpu_memory_mb`, when given, reports the runner's own peak device memory (torch knows its
    own; otherwise the process's growth on the GPU is measured).
    """

    name: str
    runtime: str
    provider: str
    run: Callable[[Any], object]
    setup_s: float = 0.0
    prepare: Callable[[np.ndarray], Any] = _identity
    compile_s: float | None = None
    gpu_memory_mb: Callable[[], float] | None = None
    notes: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


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
    gpu_memory_mb: float | None = None
    compile_s: float | None = None
    notes: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "ok"
    peak_rss_mb: float | None = None  # the whole process's, every runtime loaded in it included

    @property
    def ok(self) -> bool:
        return True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FailedRun:
    """A row that could not be timed: what it was, and why, in one line."""

    name: str
    runtime: str
    provider: str
    reason: str
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "failed"

    @property
    def ok(self) -> bool:
        return False

    def to_dict(self) -> dict:
        return asdict(self)


Row = TimingStats | FailedRun


def summarize(
    runner: Runner,
    latencies_s: Sequence[float],
    batch: int,
    first_run_s: float,
    memory_mb: float,
    gpu_memory_mb: float | None = None,
    peak_rss_mb: float | None = None,
) -> TimingStats:
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
        gpu_memory_mb=gpu_memory_mb,
        compile_s=runner.compile_s,
        notes=tuple(runner.notes),
        tags=dict(runner.tags),
        peak_rss_mb=peak_rss_mb,
    )


def failed(runner: Runner, exc: BaseException) -> FailedRun:
    return FailedRun(runner.name, runner.runtime, runner.provider, one_line(exc), dict(runner.tags))


def one_line(exc: BaseException) -> str:
    """An exception as one line; segedge's own errors already read as sentences, others get their type."""
    text = " ".join(str(exc).split())
    if isinstance(exc, SegedgeError) and text:
        return text[:300]
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def time_runners(
    runners: Sequence[Runner | FailedRun],
    make_input: Callable[[Runner], np.ndarray],
    batch: int,
    warmup: int = 3,
    runs: int = 20,
    on_round: Callable[[int], None] = lambda i: None,
    gpu: bool = False,
) -> list[Row]:
    """Time every runner on its input: first run, `warmup` untimed runs, then `runs` interleaved rounds.

    `memory_mb` is the growth of this process's resident memory from before the runner's first
    run to the highest value seen right after any of its runs. With `gpu`, the process's GPU
    memory growth over the first runs is recorded too (unless the runner reports its own).
    A runner that raises is reported as a `FailedRun` and leaves the rounds; a `FailedRun` given
    in `runners` (a peer that could not even be built) keeps its place in the rows.
    """
    process = psutil.Process()
    rows: list[Row | None] = [None] * len(runners)
    live: list[int] = []
    prepared: dict[int, Any] = {}
    first, base, peak, gpu_mb = {}, {}, {}, {}
    for k, runner in enumerate(runners):
        if isinstance(runner, FailedRun):
            rows[k] = runner
            continue
        try:
            x = runner.prepare(make_input(runner))
            base[k] = process.memory_info().rss
            gpu_before = process_gpu_memory_mb() if gpu else None
            t0 = time.perf_counter()
            runner.run(x)
            first[k] = time.perf_counter() - t0
            for _ in range(warmup):
                runner.run(x)
            peak[k] = process.memory_info().rss
            gpu_mb[k] = _gpu_growth(runner, gpu_before, gpu)
        except Exception as exc:  # a peer that cannot run is a row saying why, not a crash
            rows[k] = failed(runner, exc)
            continue
        prepared[k] = x
        live.append(k)
    latencies: dict[int, list[float]] = {k: [] for k in live}
    for i in range(runs):
        for k in list(live):
            runner = _live(runners[k])
            try:
                t0 = time.perf_counter()
                runner.run(prepared[k])
                latencies[k].append(time.perf_counter() - t0)
            except Exception as exc:
                rows[k] = failed(runner, exc)
                live.remove(k)
                continue
            peak[k] = max(peak[k], process.memory_info().rss)
        on_round(i)
    for k in live:
        growth = max(0.0, (peak[k] - base[k]) / 2**20)
        rows[k] = summarize(_live(runners[k]), latencies[k], batch, first[k], growth, gpu_mb[k], peak[k] / 2**20)
    return [r for r in rows if r is not None]


def _live(runner: Runner | FailedRun) -> Runner:
    assert isinstance(runner, Runner)  # only runners that started are in the rounds
    return runner


def _gpu_growth(runner: Runner, before: float | None, gpu: bool) -> float | None:
    if runner.gpu_memory_mb is not None:
        return runner.gpu_memory_mb()
    if not gpu or before is None:
        return None
    after = process_gpu_memory_mb()
    return None if after is None else max(0.0, after - before)


def ort_runner(session: ModelSession, setup_s: float, io_binding: bool = False, device_id: int = 0,
               name: str | None = None) -> Runner:
    """An ONNX Runtime session as a runner.

    With `io_binding`, the input is copied to the provider's device once, untimed, and the output
    stays there: the timing is the model's alone, without host <-> device copies.
    """
    precision = session.card.precision_label if session.card else "fp32"
    runner = Runner(
        name=name or f"onnxruntime {precision}",
        runtime="onnxruntime",
        provider=",".join(session.active_providers),
        run=session.run,
        setup_s=setup_s,
        tags={"precision": precision, "runtime": "onnxruntime", "provider": session.provider.value},
    )
    if io_binding:
        device = "cuda" if session.provider.value in ("cuda", "tensorrt") else "cpu"
        runner.prepare, runner.run = _bound(session, device, device_id)
        runner.notes.append(f"IO binding on {device}: host copies excluded")
    return runner


def _bound(session: ModelSession, device: str, device_id: int):
    import onnxruntime as ort

    binding = session.session.io_binding()

    def prepare(x: np.ndarray) -> Any:
        x = as_model_feed(x, session.card, session.input_type)
        value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x), device, device_id)
        binding.bind_ortvalue_input(session.input_name, value)
        binding.bind_output(session.output_name, device, device_id)
        return value  # kept alive by the caller for as long as the binding is used

    def run(_: Any) -> object:
        session.session.run_with_iobinding(binding)
        return binding

    return prepare, run
