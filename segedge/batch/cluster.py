"""Where a Ray job runs: a local Ray instance or a cluster, reached quietly, released with the job.

Ray is imported here only, inside the functions: `import segedge.batch.cluster` works without it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil

from runtimes.backends.messages import runtime_reason
from runtimes.backends.native_log import native_stderr_captured
from runtimes.errors import SegedgeError, UsageError

# Ray Data waits this long for the whole actor pool to start before it gives up; the pool is
# checked against the cluster's CPUs first, so only a cluster that loses nodes meanwhile waits.
_WAIT_FOR_ACTORS_S = 300
_SHUTDOWN_S = 10  # a local instance's processes end well within this after ray.shutdown()
_MAX_BLOCK = 64
_CONNECT_TIMEOUT_S = 10


class ClusterError(SegedgeError):
    """Ray could not be started or reached, or a worker failed in a way no single image explains."""


@dataclass(frozen=True)
class RayCluster:
    """Where and how wide. `address` None is Ray's default: $RAY_ADDRESS, else the cluster `ray start`
    runs on this machine, else a new local instance ("local" always starts one, "auto" never does)."""

    address: str | None = None
    workers: int | None = None  # actors in the pool, one Predictor each; None: CPUs // threads_per_worker
    threads_per_worker: int = 1

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        if self.threads_per_worker < 1:
            raise UsageError(f"--threads-per-worker must be >= 1, got {self.threads_per_worker}")
        if self.address not in (None, "auto", "local") and not _host_port(self.address)[1].isdigit():
            raise UsageError(f"--address {self.address!r} must be HOST:PORT (the head's GCS port, 6379 by default), "
                             "auto or local")


def require_ray() -> Any:
    """The `ray` module, or a usage error saying which extra brings it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:  # not installed, or installed without what it needs
        raise UsageError(f"--engine ray needs Ray: pip install 'segedge[ray]' ({exc})") from None


@contextlib.contextmanager
def ray_session(cluster: RayCluster) -> Iterator[int]:
    """Join the cluster (or start a local instance) and yield the actor-pool size; leave it after.

    A Ray already initialised in this process (a test, a notebook) is used as it is and left
    running. Otherwise Ray is shut down however the block ends, Ctrl-C included: a local
    instance stops, and on a cluster the job's actors die with their owner, this driver.
    """
    ray = require_ray()
    started = not ray.is_initialized()
    before = set(psutil.Process().children(recursive=True)) if started else set()
    if started:
        _init(ray, cluster.address)
    try:
        _quiet_ray_data()
        yield pool_size(cluster, float(ray.cluster_resources().get("CPU", 0)))
    finally:
        if started:
            # A local instance: its raylet, actors and tasks, this process's children that Ray started.
            instance = [p for p in psutil.Process().children(recursive=True) if p not in before]
            ray.shutdown()
            # Ended when this returns, so what they were writing can be cleaned up after them.
            _, alive = psutil.wait_procs(instance, timeout=_SHUTDOWN_S)
            for process in alive:
                with contextlib.suppress(psutil.Error):
                    process.kill()


def pool_size(cluster: RayCluster, cpus: float) -> int:
    """Actors that fit: each takes `threads_per_worker` CPUs. Ray would wait for more forever."""
    fit = int(cpus // cluster.threads_per_worker)
    workers = cluster.workers if cluster.workers is not None else max(1, fit)
    if workers * cluster.threads_per_worker > cpus:
        threads = f"{cluster.threads_per_worker} thread{'' if cluster.threads_per_worker == 1 else 's'}"
        raise UsageError(f"{workers} workers x {threads} need {workers * cluster.threads_per_worker} CPUs; "
                         f"the Ray cluster has {cpus:g}")
    return workers


def plan_blocks(items: int, workers: int) -> tuple[int, int]:
    """(blocks, actors) for `items` rows: at least 4 blocks per worker to balance, at most 64 rows
    a block, and no more actors than blocks (an actor without a block would only cost its start)."""
    per_block = min(_MAX_BLOCK, max(1, math.ceil(items / (4 * workers))))
    blocks = max(1, math.ceil(items / per_block))
    return blocks, min(workers, blocks)


def on_actor_pool(dataset: Any, actor: type, args: tuple[Any, ...], workers: int, threads: int,
                  batch_size: int | None) -> Any:
    """`dataset.map_batches(actor)` on a pool of `workers` actors holding `threads` CPUs each."""
    from ray.data import ActorPoolStrategy
    from ray.util.annotations import RayDeprecationWarning

    with warnings.catch_warnings():
        # No restarts: restartable actors make Ray print a core-worker error line per actor on the
        # driver's stderr (ray-project/ray#53727), and a rerun redoes a lost node's work anyway.
        # `max_restarts` has no named parameter yet, hence Ray's deprecation warning.
        warnings.simplefilter("ignore", RayDeprecationWarning)
        return dataset.map_batches(actor, fn_constructor_args=args, batch_size=batch_size, batch_format="numpy",
                                   compute=ActorPoolStrategy(size=workers), num_cpus=threads, max_restarts=0)


def batches(dataset: Any) -> Iterator[dict[str, Any]]:
    """Run `dataset`, yielding its output blocks as numpy batches as they finish.

    A worker's SegedgeError is raised here as itself; any other failure of the job becomes one
    ClusterError line, Ray's traceback left in its session logs.
    """
    import ray

    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as exc:
        # A task's error comes as a RayTaskError that is also the original class, its message Ray's traceback.
        cause = getattr(exc, "cause", None)
        if isinstance(cause, SegedgeError):
            raise cause from None
        raise ClusterError(f"the Ray job failed: {_cause(exc)}") from None


def _init(ray: Any, address: str | None) -> None:
    # A user's batch job sends no usage reports unless its user asked for them.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address not in (None, "auto", "local"):
        _check_reachable(address)
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        with native_stderr_captured() as captured:  # Ray's C++ client logs each refused retry to fd 2
            try:
                # Worker output stays in Ray's session logs (/tmp/ray/session_latest/logs): segedge's
                # stderr carries its own progress and one-line errors only.
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR, configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                where = f" at {address}" if address else ""
                raise ClusterError(f"cannot start or reach Ray{where}: {runtime_reason(exc)}{_said(captured())}") from None
    finally:
        if main:  # ray.init replaces SIGTERM's handler with sys.exit; segedge's unwinds and exits 143
            signal.signal(signal.SIGTERM, sigterm)


def _said(log: str) -> str:
    """The last thing Ray's C++ client logged ("[time W pid tid] file.cc:210: message"), as " (message)"."""
    messages = [line.split("] ", 1)[1].split(": ", 1)[-1] for line in log.splitlines() if "] " in line]
    return f" ({messages[-1].strip()})" if messages else ""


def _check_reachable(address: str) -> None:
    """Refuse an address nothing listens on: Ray's client would retry it for minutes, logging as it goes."""
    host, port = _host_port(address)
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach Ray at {address}: {exc.strerror or exc}") from None


def _host_port(address: str) -> tuple[str, str]:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return host, port if host else ""


def _quiet_ray_data() -> None:
    """Ray Data's progress bars and INFO lines off the console; its log file keeps them all."""
    from ray.data import DataContext
    from ray.util.annotations import RayDeprecationWarning

    for handler in logging.getLogger("ray.data").handlers:
        if type(handler).__name__ == "PlainRayHandler":  # the console one; the others write files
            handler.setLevel(logging.CRITICAL)
    context = DataContext.get_current()
    context.enable_progress_bars = False  # segedge shows its own, on stderr
    context.enable_operator_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    context.raise_original_map_exception = True  # a worker's SegedgeError, not Ray's UserCodeException
    context.wait_for_min_actors_s = _WAIT_FOR_ACTORS_S
    # Blocks go to the least busy actor, not to one on the node that read them: an image's bytes move in
    # microseconds and segmenting it takes far longer, so locality would only pile a job onto the readers' node
    # (the option is deprecated for January 2027, when Ray Data decides locality itself).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RayDeprecationWarning)
        context.execution_options.actor_locality_enabled = False


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1]}" if text else type(cause).__name__


