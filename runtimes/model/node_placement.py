"""Where each node of a session runs: counts per provider, time per provider, and `--strict`.

A GPU provider hands the nodes it has no kernel for to the CPU provider, silently. Two sources
tell which nodes went where:

- ONNX Runtime's graph-assignment record (1.22+, `session.record_ep_graph_assignment_info`):
  node counts per provider, known right after session creation, without running anything.
- A profiled run (`enable_profiling`): every node event carries its provider, duration and
  output types, so time per provider is known, and so is whether a CPU node did real work or
  only computed a shape. ORT puts small shape computations (Shape -> Gather -> Concat of a few
  int64) on the CPU on purpose; `--strict` does not count those as a fallback.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import ProviderError
from ..backends.onnxruntime_providers import CPU, Provider

RECORD_ASSIGNMENT_KEY = "session.record_ep_graph_assignment_info"
_SHAPE_TYPES = ("int64", "int32", "bool")
_SHAPE_MAX_ELEMENTS = 64


@dataclass(frozen=True)
class NodeRecord:
    """One node as a profile saw it; `time_us` is the mean over the profiled runs."""

    name: str
    op_type: str
    provider: str
    time_us: float = 0.0
    outputs: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def shape_work(self) -> bool:
        """True for small integer outputs: shape arithmetic, not tensor work."""
        if not self.outputs:
            return self.op_type in ("Shape", "Size")
        return all(t in _SHAPE_TYPES and int(np.prod(s, dtype=np.int64)) <= _SHAPE_MAX_ELEMENTS for t, s in self.outputs)


@dataclass(frozen=True)
class NodePlacement:
    """Nodes (and, from a profile, milliseconds per run) on each provider of one session."""

    requested: str
    nodes: dict[str, int]
    time_ms: dict[str, float] | None = None
    fallback: tuple[str, ...] = ()
    source: str = "assignment"
    op_types: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "requested": self.requested,
            "source": self.source,
            "nodes": dict(self.nodes),
            "time_ms": dict(self.time_ms) if self.time_ms is not None else None,
            "fallback_nodes": list(self.fallback),
            "op_types": {k: dict(v) for k, v in self.op_types.items()},
        }

    def summary(self) -> str:
        """'CUDAExecutionProvider 120 nodes 9.1 ms (97%), CPUExecutionProvider 7 nodes 0.3 ms (3%)'."""
        total = sum(self.time_ms.values()) if self.time_ms else 0.0
        parts = []
        for provider, count in sorted(self.nodes.items(), key=lambda kv: -kv[1]):
            text = f"{provider} {count} nodes"
            if self.time_ms is not None:
                ms = self.time_ms.get(provider, 0.0)
                text += f" {ms:.2f} ms ({ms / total:.0%})" if total > 0 else f" {ms:.2f} ms"
            parts.append(text)
        return ", ".join(parts)


def record_assignment(opts: ort.SessionOptions) -> None:
    """Ask ORT to keep the node -> provider assignment (ignored by builds that predate it)."""
    opts.add_session_config_entry(RECORD_ASSIGNMENT_KEY, "1")


def assigned_placement(session: ort.InferenceSession, requested: Provider) -> NodePlacement | None:
    """Node counts per provider from the assignment record; None when this build has none."""
    getter = getattr(session, "get_provider_graph_assignment_info", None)
    if getter is None:
        return None
    try:
        subgraphs = getter()
    except Exception:  # recording was not enabled for this session
        return None
    if not subgraphs:
        return None
    nodes: Counter[str] = Counter()
    ops: dict[str, Counter[str]] = defaultdict(Counter)
    for subgraph in subgraphs:
        for node in subgraph.get_nodes():
            nodes[subgraph.ep_name] += 1
            ops[subgraph.ep_name][node.op_type] += 1
    return NodePlacement(requested.ort_name, dict(nodes), op_types={k: dict(v) for k, v in ops.items()})


def read_profile(path: str | os.PathLike[str]) -> list[NodeRecord]:
    """ORT's profile JSON -> one record per node, its time averaged over the runs profiled."""
    events = json.loads(Path(path).read_text())
    totals: dict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    first: dict[str, dict] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue  # fence events and session-level events
        totals[name] += float(event.get("dur", 0))
        counts[name] += 1
        first.setdefault(name, event.get("args", {}))
    records = []
    for name, args in first.items():
        outputs = tuple(
            (dtype, tuple(int(d) for d in shape))
            for item in args.get("output_type_shape", [])
            for dtype, shape in item.items()
        )
        records.append(NodeRecord(
            name=name.removesuffix("_kernel_time"),
            op_type=args.get("op_name", "?"),
            provider=args.get("provider", "?"),
            time_us=totals[name] / counts[name],
            outputs=outputs,
        ))
    return records


def placement_from_records(records: Iterable[NodeRecord], requested: Provider) -> NodePlacement:
    nodes: Counter[str] = Counter()
    time_ms: dict[str, float] = defaultdict(float)
    ops: dict[str, Counter[str]] = defaultdict(Counter)
    fallback = []
    for r in records:
        nodes[r.provider] += 1
        time_ms[r.provider] += r.time_us / 1000.0
        ops[r.provider][r.op_type] += 1
        if r.provider == CPU and requested is not Provider.cpu and not r.shape_work:
            fallback.append(f"{r.name} ({r.op_type})")
    return NodePlacement(requested.ort_name, dict(nodes), dict(time_ms), tuple(fallback), "profile",
                     {k: dict(v) for k, v in ops.items()})


def check_strict(placement: NodePlacement, provider: Provider) -> None:
    """`--strict`: an accelerator was asked for, so tensor work on the CPU provider is an error."""
    if provider is Provider.cpu or not placement.fallback:
        return
    shown = ", ".join(placement.fallback[:5]) + (" ..." if len(placement.fallback) > 5 else "")
    cpu_ms = (placement.time_ms or {}).get(CPU)
    spent = f", {cpu_ms:.2f} ms per run" if cpu_ms is not None else ""
    raise ProviderError(
        f"--strict: {len(placement.fallback)} nodes ran on the CPU instead of {provider.value}{spent}: {shown}"
    )
