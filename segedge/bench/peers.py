"""PyTorch as benchmark peers: eager, and `torch.compile` with its compile time kept apart.

Both take the same input as the ONNX runtimes, use the same thread count, and, unless copies are
excluded (`--io-binding`), include the host -> device copy of the input and the copy of the output
back, as an app calling them with numpy arrays would pay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from runtimes.measure.timing import Runner


def device_for(provider: str) -> str:
    """PyTorch runs where the ONNX provider runs: CUDA for cuda/tensorrt, else the CPU."""
    return "cuda" if provider in ("cuda", "tensorrt") else "cpu"


def torch_eager_runner(model: nn.Module, device: str, threads: int, exclude_copies: bool = False,
                       setup_s: float = 0.0) -> Runner:
    torch.set_num_threads(threads)
    model = model.eval().to(device)
    return _runner("pytorch eager fp32", "torch", model, device, exclude_copies, setup_s)


def torch_compile_runner(model: nn.Module, device: str, threads: int, example: np.ndarray,
                         exclude_copies: bool = False, setup_s: float = 0.0) -> Runner:
    """Compile for `example`'s shape now, so the timed runs never recompile; raises when it cannot."""
    torch.set_num_threads(threads)
    model = model.eval().to(device)
    compiled = torch.compile(model, dynamic=False)
    start = time.perf_counter()
    with torch.inference_mode():
        compiled(torch.from_numpy(example).to(device))
        _sync(device)
    runner = _runner("pytorch torch.compile fp32", "torch.compile", compiled, device, exclude_copies, setup_s)
    runner.compile_s = time.perf_counter() - start
    runner.notes.append(f"compile {runner.compile_s:.1f} s (inductor, static shape)")
    return runner


def _runner(name: str, kind: str, model: Callable[[torch.Tensor], torch.Tensor], device: str, exclude_copies: bool,
            setup_s: float) -> Runner:
    def prepare(x: np.ndarray) -> Any:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        return torch.from_numpy(x).to(device) if exclude_copies else x

    def run(x: Any) -> object:
        with torch.inference_mode():
            if exclude_copies:
                y = model(x)
                _sync(device)
                return y
            return model(torch.from_numpy(x).to(device)).cpu().numpy()

    runner = Runner(
        name=name, runtime=f"{kind} {torch.__version__}", provider=device, run=run, prepare=prepare,
        setup_s=setup_s, tags={"precision": "fp32", "runtime": kind, "provider": device},
    )
    if device == "cuda":
        runner.gpu_memory_mb = lambda: torch.cuda.max_memory_allocated() / 2**20
    return runner


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
