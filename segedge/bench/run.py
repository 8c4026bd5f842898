"""`segedge bench`'s work: ONNX Runtime on one provider and its peers, timed in one interleaved run.

Peers (`--compare`): PyTorch eager, `torch.compile`, OpenVINO's runtime on the same ONNX file,
ONNX Runtime's CPU provider (what `--provider cuda` or `openvino` gains over it, measured in one run),
and onnxruntime-web in headless Chromium (timed after the rounds: the browser keeps its own clock).
Every runtime gets the same input and the same intra-op thread count; a peer that cannot be built
(no torch, no openvino package, a compiler failure) becomes a row saying so, and the rest go on.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.model.card import ModelCard
from runtimes.errors import CardError, UsageError
from runtimes.guards.fileio import work_folder
from runtimes.measure.machine import machine_record, usable_cpus
from runtimes.model.node_placement import NodePlacement, check_strict
from runtimes.measure.profiling import profile_placement
from runtimes.backends.onnxruntime_providers import Provider, explain
from runtimes.backends import Runtime, RuntimeSpec, backend_named, chosen_backend
from runtimes.backends.onnxruntime_session import ModelSession, open_session
from runtimes.measure.timing import FailedRun, Row, Runner, one_line, ort_runner, time_runners

Progress = Callable[[str], None]


class Peer(str, Enum):
    """What runs beside the main row, as `--compare` and `report --runtimes` name it."""

    torch = "torch"
    compile = "compile"
    openvino = "openvino"
    ort_cpu = "ort-cpu"  # ONNX Runtime's own CPU provider: what another provider is worth, in one run
    web = "web"  # onnxruntime-web's WASM in headless Chromium, timed after the rounds (segedge.bench.web)

    @property
    def row_runtime(self) -> str:
        """The runtime a row of this peer names, in bench's and report's rows and JSON alike."""
        return {Peer.compile: "torch.compile", Peer.ort_cpu: "onnxruntime", Peer.web: "onnxruntime-web"}.get(
            self, self.value)


@dataclass(frozen=True)
class BenchRequest:
    target: str
    # What runs the main row: its runtime (None: the file's own), ONNX Runtime's provider and its options, the
    # threads every row gets, the precision hint (also the OpenVINO peer's).
    spec: RuntimeSpec = field(default_factory=RuntimeSpec)
    torch_baseline: bool | None = None  # PyTorch eager beside: None means when the card names a PyTorch source
    compare: tuple[Peer, ...] = ()
    warmup: int = 3
    runs: int = 20
    input_size: tuple[int, int] | None = None
    batch: int = 1
    weights: Path | None = None
    strict: bool = False
    profile: bool = False
    io_binding: bool = False
    card_overrides: dict[str, Any] = field(default_factory=dict)  # for files exported elsewhere

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", self.spec.on(chosen_backend(self.target, self.spec.runtime).name))
        if self.spec.runtime != Runtime.onnxruntime:
            given = [flag for flag, on in (("--provider", self.spec.provider != Provider.cpu), ("--strict", self.strict),
                                           ("--profile", self.profile), ("--io-binding", self.io_binding)) if on]
            if given:
                raise UsageError(f"{', '.join(given)} {'goes' if len(given) == 1 else 'go'} with --runtime onnxruntime "
                                 "(ONNX Runtime's providers and profiler)")

    def peers_for(self, card: ModelCard) -> tuple[Peer, ...]:
        """`compare`, plus PyTorch eager when asked for or, by default, when there is a PyTorch model to rebuild
        (and PyTorch to rebuild it with: the runtime install has none)."""
        with_torch = self.torch_baseline if self.torch_baseline is not None else (
            bool(card.source) and importlib.util.find_spec("torch") is not None)
        wanted = set(self.compare) | ({Peer.torch} if with_torch else set())
        return tuple(p for p in Peer if p in wanted)


@dataclass(frozen=True)
class BenchResult:
    model: str
    card: ModelCard
    input_size: tuple[int, int]
    batch: int
    threads: int
    provider: str
    provider_reason: str
    active_providers: tuple[str, ...]
    placement: NodePlacement | None
    rows: list[Row]
    machine: dict
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "batch": self.batch,
            "threads": self.threads,
            "provider": self.provider,
            "provider_reason": self.provider_reason,
            "active_providers": list(self.active_providers),
            "placement": self.placement.to_dict() if self.placement else None,
            "rows": [r.to_dict() for r in self.rows],
            "machine": self.machine,
            "notes": list(self.notes),
        }


def run_bench(request: BenchRequest, progress: Progress = lambda message: None) -> BenchResult:
    threads = request.spec.threads or usable_cpus()
    chosen = explain(request.spec.provider)
    with work_folder("segedge-bench-") as workdir:
        model_path = onnx_for(request.target, Path(workdir), request.weights, request.input_size, progress)
        start = time.perf_counter()
        # Peers share the timed rounds: ORT's spin-waiting threads would slow whichever runs next.
        spinning = not request.compare and request.torch_baseline is False
        backend = backend_named(request.spec.runtime or Runtime.onnxruntime)
        on_ort = backend.name == Runtime.onnxruntime
        options = request.spec.provider_options
        # With ONNX Runtime on another provider than OpenVINO's, the hint is the OpenVINO peer's alone.
        hint = request.spec.hint if not on_ort or chosen.provider is Provider.openvino else None
        main = replace(request.spec, provider=chosen.provider.value if on_ort else Provider.cpu.value,
                       provider_options=replace(options, openvino_hint=hint), threads=threads, hint=hint,
                       spinning=spinning)
        session: Any = backend.open(model_path, main, request.card_overrides)
        setup = time.perf_counter() - start
        card = session.card
        size = request.input_size or card.input_size
        x = np.random.default_rng(0).standard_normal((request.batch, 3, *size)).astype(np.float32)
        placement = session.placement() if on_ort else None
        if request.strict or request.profile:
            progress("profiling one run to see where every node ran")
            placement = profile_placement(model_path, chosen.provider, x, threads, options)
            if request.strict:
                check_strict(placement, chosen.provider)
        runners: list[Runner | FailedRun] = [
            ort_runner(session, setup, request.io_binding, options.device_id) if on_ort
            else backend.timing_runner(session, setup, name=f"{backend.name} runtime {card.precision_label}")
        ]
        peers = request.peers_for(card)
        notes = () if Peer.torch in peers or request.torch_baseline is False else (
            "no PyTorch baseline: " + ("PyTorch is not installed (pip install 'segedge[export]')" if card.source else
                                       "the file has no segedge card naming its PyTorch source"),)
        for peer in (p for p in peers if p is not Peer.web):
            progress(f"building the {peer.value} peer")
            runners.append(build_peer(peer, session, card, x, threads, request))
        progress(f"timing {len(runners)} runtimes: {request.warmup} warm-up + {request.runs} interleaved runs")
        rows = time_runners(runners, lambda r: x, request.batch, request.warmup, request.runs,
                            gpu=chosen.provider in (Provider.cuda, Provider.tensorrt))
        if Peer.web in peers:
            from segedge.bench.web import web_peer_row

            rows.append(web_peer_row(model_path, card, x, Path(workdir) / "web", threads=threads,
                                     warmup=request.warmup, runs=request.runs, rows=rows, progress=progress))
    return BenchResult(
        model=request.target,
        card=card,
        input_size=size,
        batch=request.batch,
        threads=threads,
        provider=chosen.provider.value if on_ort else backend.name,
        provider_reason=chosen.reason if on_ort else session.describe(),
        active_providers=session.active_providers,
        placement=placement,
        rows=rows,
        machine=machine_record(threads),
        notes=notes,
    )


def build_peer(peer: Peer, session: ModelSession, card: ModelCard, x: np.ndarray, threads: int,
               request: BenchRequest) -> Runner | FailedRun:
    """One peer runner, or a failed row with the reason it could not be built."""
    if peer is Peer.ort_cpu:
        start = time.perf_counter()
        cpu = open_session(session.path, Provider.cpu, threads, spinning=False, overrides=request.card_overrides)
        return ort_runner(cpu, time.perf_counter() - start, name="onnxruntime cpu")
    if peer is Peer.openvino:
        try:
            from runtimes.backends.openvino_timing import openvino_runner

            return openvino_runner(session.path, x.shape, threads, precision_hint=request.spec.hint)
        except Exception as exc:  # not installed, or OpenVINO cannot read this graph
            return FailedRun("openvino", "openvino", "CPU", one_line(exc), {"runtime": "openvino"})
    name = "pytorch eager fp32" if peer is Peer.torch else "pytorch torch.compile fp32"
    kind = peer.row_runtime
    if session.stored_card is None:
        return FailedRun(name, kind, "-", "the model has no segedge card, so there is no PyTorch model to rebuild",
                         {"runtime": kind})
    try:
        device = session.provider.value if request.spec.runtime == Runtime.onnxruntime else "cpu"
        return torch_peer(peer, card, request.weights, device, threads, x, request.io_binding)
    except Exception as exc:  # missing torch, a model that no longer builds, an inductor failure
        return FailedRun(name, kind, "-", one_line(exc), {"runtime": kind})


def torch_peer(peer: Peer, card: ModelCard, weights: Path | None, provider: str, threads: int,
               x: np.ndarray, exclude_copies: bool) -> Runner:
    from segedge.bench.peers import device_for, torch_compile_runner, torch_eager_runner
    from segedge.parity.reference import reference_model

    start = time.perf_counter()
    model, _ = reference_model(card, weights)
    setup = time.perf_counter() - start
    device = device_for(provider)
    if peer is Peer.torch:
        return torch_eager_runner(model, device, threads, exclude_copies, setup)
    return torch_compile_runner(model, device, threads, x, exclude_copies, setup)


def onnx_for(target: str, workdir: Path, weights: Path | None, input_size: tuple[int, int] | None,
             progress: Progress) -> Path:
    """The ONNX file to time: the given one, or a fresh export of a zoo / user model."""
    path = Path(target)
    if path.suffix == ".onnx" or path.exists():
        return path
    from segedge.export.run import ExportRequest, run_export

    progress(f"exporting {target}")
    result = run_export(
        ExportRequest(source=target, output=workdir / "model.onnx", weights=weights, input_size=input_size),
        progress,
    )
    return result.path
