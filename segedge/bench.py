"""`segedge bench`'s work: the ONNX Runtime runner and the PyTorch baseline, timed in one run."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.bench import Runner, TimingStats, time_runners
from runtimes.card import ModelCard
from runtimes.errors import CardError
from runtimes.machine import machine_record
from runtimes.providers import Provider, ProviderOptions
from runtimes.session import ModelSession, open_session


@dataclass(frozen=True)
class BenchRequest:
    target: str
    provider: Provider = Provider.cpu
    torch_baseline: bool = True
    warmup: int = 3
    runs: int = 20
    input_size: tuple[int, int] | None = None
    batch: int = 1
    threads: int | None = None
    weights: Path | None = None


@dataclass(frozen=True)
class BenchResult:
    model: str
    card: ModelCard | None
    input_size: tuple[int, int]
    batch: int
    threads: int
    active_providers: tuple[str, ...]
    rows: list[TimingStats]
    machine: dict

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "batch": self.batch,
            "threads": self.threads,
            "active_providers": list(self.active_providers),
            "rows": [r.to_dict() for r in self.rows],
            "machine": self.machine,
        }


def ort_runner(session: ModelSession, setup_s: float) -> Runner:
    return Runner(
        name=f"onnxruntime {session.card.precision if session.card else 'fp32'}",
        runtime="onnxruntime",
        provider=",".join(session.active_providers),
        run=session.run,
        setup_s=setup_s,
    )


def torch_runner(card: ModelCard, weights: Path | None, provider: Provider, threads: int) -> Runner:
    import torch

    from .verify import reference_model

    torch.set_num_threads(threads)
    device = "cuda" if provider in (Provider.cuda, Provider.tensorrt) else "cpu"
    start = time.perf_counter()
    model, _ = reference_model(card, weights)
    model = model.to(device)
    setup = time.perf_counter() - start

    def run(x: np.ndarray) -> object:
        with torch.inference_mode():
            y = model(torch.from_numpy(x).to(device))
            if device == "cuda":
                torch.cuda.synchronize()
            return y

    return Runner(name="pytorch eager fp32", runtime=f"torch {torch.__version__}", provider=device, run=run, setup_s=setup)


def run_bench(request: BenchRequest, progress=lambda message: None) -> BenchResult:
    with tempfile.TemporaryDirectory(prefix="segedge-bench-") as workdir:
        model_path = _onnx_for(request, Path(workdir), progress)
        start = time.perf_counter()
        session = open_session(model_path, request.provider, request.threads, ProviderOptions())
        setup = time.perf_counter() - start
        card = session.card
        size = request.input_size or (card.input_size if card else None)
        if size is None:
            raise CardError(f"{model_path} has no model card: give --input-size")
        runners = [ort_runner(session, setup)]
        if request.torch_baseline:
            if card is None:
                raise CardError(f"{model_path} has no model card, so there is no PyTorch reference: use --no-torch")
            progress("building the PyTorch baseline")
            runners.append(torch_runner(card, request.weights, session.provider, session.threads))
        x = np.random.default_rng(0).standard_normal((request.batch, 3, *size)).astype(np.float32)
        progress(f"timing {len(runners)} runtimes: {request.warmup} warm-up + {request.runs} interleaved runs")
        rows = time_runners(runners, lambda r: x, request.batch, request.warmup, request.runs)
    return BenchResult(
        model=request.target,
        card=card,
        input_size=size,
        batch=request.batch,
        threads=session.threads,
        active_providers=session.active_providers,
        rows=rows,
        machine=machine_record(),
    )


def _onnx_for(request: BenchRequest, workdir: Path, progress) -> Path:
    """The ONNX file to time: the given one, or a fresh export of a zoo / user model."""
    path = Path(request.target)
    if path.suffix == ".onnx" or path.exists():
        return path
    from .pipeline import ExportRequest, run_export

    progress(f"exporting {request.target}")
    result = run_export(
        ExportRequest(source=request.target, output=workdir / "model.onnx", weights=request.weights,
                      input_size=request.input_size),
        progress,
    )
    return result.path
