"""ExecuTorch behind the Predictor: a .pte program on ExecuTorch's runtime (`pip install 'segedge[executorch]'`).

`ExecuTorchSession` offers what `runtimes.backends.onnxruntime_session.ModelSession` does for the programs
`segedge export --target executorch` writes: the model's `forward`, lowered to the XNNPACK delegate
(the kernels ExecuTorch runs on a phone's CPU), and the card, stored in the program itself as a
constant method `segedge_card` returning its JSON (`segedge_target`: the export's record).

- torch: ExecuTorch's Python runtime passes tensors as torch tensors, so this adapter imports torch
  when it opens a file (an app on a phone uses ExecuTorch's C++/Java/Swift API instead). Nothing
  else under `runtimes/` imports torch.
- Threads: ExecuTorch's thread pool is one per process and can only be sized before the first
  program loads (resizing it later aborts the process). The first session opened sizes it; a later
  one asking for another count is refused in one line.
- Shapes: a program exported with dynamic H/W takes sides within its bounds (the target record's
  `side_range`); the card's `tile_size` is the upper bound, so the Predictor tiles larger images,
  and smaller sides are padded here (edge pixels repeated) and the scores cropped back.
  A static program takes its one size (padded / tiled to by the Predictor). Batches run one image
  at a time (the programs are exported at batch 1).
- Sharing: a loaded method's memory-planned buffers are its own, so runs of one session take a
  lock: one Predictor may be shared by threads, one image at a time.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.card import ModelCard
from ..model.card_checks import check_overrides
from ..errors import CardError, ModelFileError, UsageError
from ..model.inspection import InspectedCard, Inspection, TensorInfo, inspect_stored
from ..measure.machine import check_threads, usable_cpus
from .native_log import native_stderr_captured
from .onnxruntime_session import check_model_path, run_failure

INSTALL = "pip install 'segedge[executorch]'"
CARD_METHOD = "segedge_card"
TARGET_METHOD = "segedge_target"
_pool: dict[str, int] = {}  # "threads": the size the process's thread pool was given


def executorch_version() -> str | None:
    try:
        return importlib.metadata.version("executorch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _runtime(threads: int) -> Any:
    """ExecuTorch's runtime, its thread pool sized to `threads` before the first program loads."""
    try:
        with _quiet_import():
            from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
            from executorch.runtime import Runtime
    except ImportError:
        raise UsageError(f"ExecuTorch (.pte) programs need ExecuTorch's runtime: {INSTALL}") from None
    if "threads" not in _pool:
        with native_stderr_captured():  # its cpuinfo probing and the pool's reset log to descriptor 2
            _unsafe_reset_threadpool(threads)
            runtime = Runtime.get()
        _pool["threads"] = threads
        return runtime
    elif _pool["threads"] != threads:
        raise UsageError(f"ExecuTorch's thread pool is one per process, sized to {_pool['threads']} threads when the "
                         f"first program loaded; {threads} threads need another process")
    return Runtime.get()


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """ExecuTorch's first import: torchao (which it pulls in) logs warnings about CUDA libraries through its own
    handler, torch's pytree about enums; none concerns running a program on the CPU."""
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with native_stderr_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def pool_threads() -> int | None:
    """The size of this process's ExecuTorch thread pool (None before the first program loads)."""
    return _pool.get("threads")


@dataclass
class ExecuTorchSession(InspectedCard):
    """A .pte program's `forward` on ExecuTorch's runtime."""

    path: Path
    inspection: Inspection
    threads: int
    side_range: tuple[int, int] | None  # dynamic sides' bounds; None: the card's static size
    _method: Any = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def active_providers(self) -> tuple[str, ...]:
        return ("ExecuTorch XNNPACK",)

    def describe(self) -> str:
        return f"ExecuTorch {executorch_version() or ''} runtime, XNNPACK delegate, {self.threads} threads"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """N x 3 x H x W float32 in, N x C x h x w float32 scores out.

        Sides under the program's smallest are padded (edge pixels repeated) and the scores cropped back,
        so a small image runs as it would in a larger one."""
        h, w = batch.shape[2:] if batch.ndim == 4 else (0, 0)
        low = self.side_range[0] if self.side_range is not None else 0
        if batch.ndim == 4 and 0 < min(h, w) < low:
            padded = np.pad(batch, ((0, 0), (0, 0), (0, max(low - h, 0)), (0, max(low - w, 0))), mode="edge")
            out = self.run(padded)
            stride = self.card.output_stride
            return np.ascontiguousarray(out[:, :, : -(-h // stride), : -(-w // stride)])
        self._check_size(batch)
        return np.concatenate([self._run_one(batch[i : i + 1]) for i in range(batch.shape[0])])

    def _check_size(self, batch: np.ndarray) -> None:
        sides = tuple(batch.shape[2:])
        if batch.ndim != 4 or batch.shape[1] != 3:
            fits = False
        elif self.side_range is None:
            fits = sides == tuple(self.card.input_size)
        else:
            low, high = self.side_range
            fits = all(low <= side <= high for side in sides)
        if not fits:
            bounds = (f"sides in {self.side_range[0]}..{self.side_range[1]}" if self.side_range is not None
                      else "one static size")
            raise ModelFileError(run_failure(self.path, tuple(batch.shape), self.card,
                                             ValueError(f"the program takes {bounds}")))

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        import torch

        with self._lock:
            try:
                out = self._method.execute([torch.from_numpy(np.ascontiguousarray(x))])[0]
            except Exception as exc:  # noqa: BLE001  (ExecuTorch raises RuntimeError with its error code)
                raise ModelFileError(run_failure(self.path, tuple(x.shape), self.card, exc)) from None
            return np.array(out.detach().numpy(), dtype=np.float32)  # a copy: the method reuses its buffers


def open_executorch(path: str | Path, threads: int | None = None,
                    overrides: Mapping[str, Any] | None = None) -> ExecuTorchSession:
    """Open `path` (.pte) on ExecuTorch's runtime; `overrides` are card fields replacing the file's."""
    path = check_model_path(path)
    overrides = dict(overrides or {})
    count = check_threads(threads) or pool_threads() or usable_cpus()
    runtime = _runtime(count)
    with native_stderr_captured():
        try:
            program = runtime.load_program(path)
            methods = set(program.method_names)
            card_json = program.load_method(CARD_METHOD).execute([])[0] if CARD_METHOD in methods else None
            record_json = program.load_method(TARGET_METHOD).execute([])[0] if TARGET_METHOD in methods else None
            method = program.load_method("forward")
        except RuntimeError as exc:
            raise ModelFileError(f"{path}: ExecuTorch cannot load it ({str(exc).strip().splitlines()[0]})") from None
    if "forward" not in methods:
        raise ModelFileError(f"{path}: the program has no forward method")
    if card_json is None:
        raise CardError(f"{path} holds no segedge card (a program `segedge export --target executorch` did not "
                        "write): export it with segedge")
    card = ModelCard.from_json(card_json)
    record = json.loads(record_json) if record_json is not None else None
    meta = method.metadata
    inputs = (TensorInfo(card.input_name, "tensor(float)", (1, 3, *card.input_size)),)
    outputs = (TensorInfo(card.output_name, "tensor(float)", (1, card.num_classes or 1, *card.input_size)),)
    inspection = inspect_stored(card, overrides, inputs, outputs, record)
    check_overrides(path, overrides, inspection, card)
    side_range = tuple(record["side_range"]) if record and record.get("side_range") else None
    if meta.num_inputs() != 1:
        raise ModelFileError(f"{path}: forward takes {meta.num_inputs()} inputs; a segmentation model takes one image")
    return ExecuTorchSession(path=path, inspection=inspection, threads=pool_threads() or count,
                             side_range=side_range, _method=method)
