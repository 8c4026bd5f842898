"""`segedge predict --engine ray`: the jobs of a local run, on a Ray Data actor pool.

The driver lists the jobs as a local run does (`jobs.find_images`). A Ray Data task stage reads
each file's bytes, unless the image's outputs are already whole (a resumed run leaves them). An
actor pool, one Predictor per actor, decodes each file with segedge's loader and writes its
outputs with `jobs.segment`, the function a local run calls, so the files are the same bytes.
Actors write into the output folder themselves (on a cluster, a folder every node reaches at the
same path): masks and probabilities never travel to the driver, one small status row per image does.
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import ray

from runtimes.errors import ImageError, UsageError
from runtimes.guards.fileio import remove_temporaries, write_text_atomic
from runtimes.guards.interrupts import after_children
from runtimes.predictor import Predictor

from segedge.batch.cluster import RayCluster, batches, on_actor_pool, plan_blocks, ray_session
from segedge.batch.jobs import OUTPUTS, output_stem, outputs_whole, segment

FAILURES = "failures.jsonl"


@dataclass(frozen=True)
class SegmentSpec:
    """What every actor needs to do any image's job; small, pickled once per actor."""

    model: str  # absolute: workers do not share the driver's working folder
    options: dict[str, Any] = field(default_factory=dict)  # Predictor keywords (provider, card overrides, ...)
    overlay: bool = False
    proba: bool = False


class ImageResult(NamedTuple):
    source: str
    status: str  # "done", "present" (its outputs were already whole) or "failed"
    reason: str  # why it failed; "" otherwise
    node: str  # the Ray node whose actor handled it


@dataclass(frozen=True)
class BatchSummary:
    total: int
    done: int
    present: int  # outputs already whole: left as they were
    failures: list[tuple[str, str]]  # (path, reason), in the order the images were listed
    workers: int
    nodes: int  # distinct Ray nodes whose actors segmented at least one image


def predict_on_ray(spec: SegmentSpec, jobs: list[tuple[Path, Path]], output_dir: Path, cluster: RayCluster,
                   report: Callable[[ImageResult], None] = lambda result: None) -> BatchSummary:
    """Segment `jobs` (from `find_images`) into `output_dir`; `report` hears of each image as it ends.

    Images that fail (undecodable, missing) are listed in OUTPUT_DIR/failures.jsonl and the job
    goes on; a failure no image explains (a full disk, a model a worker cannot load) ends it.
    """
    check_failures_file(output_dir)
    rows = [{"source": str(source), "file": os.path.abspath(source),
             "stem": os.path.abspath(output_stem(output_dir, relative))} for source, relative in jobs]
    counts = {"done": 0, "present": 0}
    failures: list[tuple[str, str]] = []
    nodes: set[str] = set()  # counts, failures and nodes only: a million images' rows stay off the driver's memory
    # An actor killed mid-write (Ctrl-C ends the instance; a node is lost) cannot remove its temporary.
    clean_up = functools.partial(remove_temporaries, sorted({Path(row["stem"]).parent for row in rows}), OUTPUTS)
    with after_children(clean_up), ray_session(cluster) as workers:
        blocks, workers = plan_blocks(len(rows), workers)
        for result in _run(spec, rows, blocks, workers, cluster.threads_per_worker):
            if result.status == "failed":
                failures.append((result.source, result.reason))
            else:
                counts[result.status] += 1
            if result.status != "present":
                nodes.add(result.node)
            report(result)
    order = {str(source): i for i, (source, _) in enumerate(jobs)}
    failures.sort(key=lambda failure: order[failure[0]])
    write_failures(output_dir, failures)
    return BatchSummary(len(jobs), counts["done"], counts["present"], failures, workers, len(nodes))


def write_failures(output_dir: Path, failures: list[tuple[str, str]]) -> None:
    """OUTPUT_DIR/failures.jsonl, one {"path", "reason"} per failed image, atomically; none: no file.

    Each run lists its own failures, and a resumed run retries those of the last: a list left
    from an earlier run would name images that are done by now.
    """
    path = output_dir / FAILURES
    if failures:
        write_text_atomic(path, "".join(json.dumps({"path": p, "reason": r}) + "\n" for p, r in failures))
    else:
        path.unlink(missing_ok=True)


def check_failures_file(output_dir: Path) -> None:
    """Refuse, before any work, an OUTPUT_DIR/failures.jsonl that is not segedge's list: the run replaces
    (or removes) the list, and segedge never writes over a file it did not write."""
    path = output_dir / FAILURES
    if path.exists() and not _is_failure_list(path):
        raise UsageError(f"{path} exists and is not a list of failures segedge wrote; move it, or choose another "
                         "output folder")


def _is_failure_list(path: Path) -> bool:
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON lines
        return False
    return all(isinstance(r, dict) and set(r) == {"path", "reason"} for r in records)


def _run(spec: SegmentSpec, rows: list[dict[str, str]], blocks: int, workers: int, threads: int) -> Iterator[ImageResult]:
    items = ray.data.from_items(rows, override_num_blocks=blocks)
    # Reads take no CPU from the pool (the actors hold them all: a read waiting for one would wait
    # forever), and one reader per actor keeps it fed: a block reads far faster than it segments.
    read = items.map_batches(functools.partial(read_files, overlay=spec.overlay, proba=spec.proba),
                             batch_format="numpy", num_cpus=0, concurrency=workers)
    segmented = on_actor_pool(read, SegmentActor, (spec, threads), workers, threads, batch_size=1)
    for batch in batches(segmented):
        for source, status, reason, node in zip(batch["source"], batch["status"], batch["reason"], batch["node"]):
            yield ImageResult(str(source), str(status), str(reason), str(node))


def read_files(batch: dict[str, np.ndarray], overlay: bool, proba: bool) -> dict[str, np.ndarray]:
    """Each job's file bytes (state "read"); none where its outputs are already whole ("present"), or
    where this node cannot read the file ("unread": the actor's loader then names what is wrong)."""
    read = [_read(Path(file), Path(stem), overlay, proba) for file, stem in zip(batch["file"], batch["stem"])]
    return {**batch, "state": np.array([state for state, _ in read], dtype=object),
            "data": np.array([data for _, data in read], dtype=object)}


def _read(file: Path, stem: Path, overlay: bool, proba: bool) -> tuple[str, bytes]:
    if outputs_whole(stem, overlay, proba):
        return "present", b""
    try:
        return "read", file.read_bytes()
    except OSError:
        return "unread", b""


class SegmentActor:
    """One Predictor, built once per actor; each call segments a batch of read files."""

    def __init__(self, spec: SegmentSpec, threads: int) -> None:
        self.spec = spec
        self.predictor = Predictor(spec.model, threads=threads, **spec.options)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outcomes = [self._one(*row) for row in zip(batch["source"], batch["file"], batch["stem"], batch["state"], batch["data"])]
        return {"source": batch["source"], "status": np.array([s for s, _ in outcomes], dtype=object),
                "reason": np.array([r for _, r in outcomes], dtype=object),
                "node": np.array([self.node] * len(outcomes), dtype=object)}

    def _one(self, source: str, file: str, stem: str, state: str, data: bytes) -> tuple[str, str]:
        if state == "present":
            return "present", ""
        image: Any = Path(file) if state == "unread" else _named_bytes(data, source)
        try:
            segment(self.predictor, image, Path(stem), self.spec.overlay, self.spec.proba)
        except ImageError as exc:  # this image only: the job goes on
            return "failed", " ".join(str(exc).split())
        except MemoryError:  # one huge image must not end a million-image job
            return "failed", f"{source}: out of memory (a smaller image, or --tile, may help)"
        return "done", ""


def _named_bytes(data: bytes, name: str) -> io.BytesIO:
    """The file's bytes as a file whose `name` is its path: segedge's loader names it in its errors."""
    handle = io.BytesIO(data)
    handle.name = name
    return handle
