"""LiteRT (TensorFlow Lite) behind the Predictor: a .tflite file on `ai-edge-litert`'s interpreter.

`LiteRTSession` offers what `runtimes.backends.onnxruntime_session.ModelSession` does (path, card, inspection, `run`
taking N x 3 x H x W float32 and giving N x C x h x w float32 scores) for the files
`segedge export --target litert` writes, and for other .tflite segmentation models described
with card options. It needs no torch and no TensorFlow (`pip install 'segedge[litert]'`).

- XNNPACK: the interpreter applies LiteRT's default delegate, XNNPACK (the same kernels LiteRT
  runs on an Android phone's CPU), with `threads` threads.
- Static shapes: a LiteRT segmentation model takes one input size (litert-torch bakes the resize
  targets into the graph), so its card is static and the Predictor pads smaller images to it and
  tiles larger ones. A batch runs one image at a time on a batch-1 model.
- Quantized input and output (int8 / uint8 tensors, as a PT2E-quantized model has): quantized and
  dequantized here with the tensors' own scale and zero point.
- Threads: a LiteRT interpreter is not thread-safe; runs of one session take a lock, so one
  Predictor may be shared by threads but runs one image at a time. For parallel throughput open a
  Predictor per thread (each holds its own interpreter and XNNPACK weights).
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.card import ModelCard
from ..model.card_checks import check_overrides
from ..errors import ModelFileError, UsageError
from ..model.inspection import InspectedCard, Inspection, TensorInfo, inspect_stored
from .litert_metadata import INSTALL, read_card
from ..measure.machine import check_threads, usable_cpus
from .native_log import native_stderr_captured
from .onnxruntime_session import check_model_path, run_failure

_TYPES = {np.float32: "tensor(float)", np.int8: "tensor(int8)", np.uint8: "tensor(uint8)", np.float16: "tensor(float16)"}


def litert_version() -> str | None:
    try:
        return importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return None


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise UsageError(f"LiteRT (.tflite) files need ai-edge-litert: {INSTALL}") from None
    return Interpreter


@dataclass
class LiteRTSession(InspectedCard):
    """A .tflite model on LiteRT's interpreter with the XNNPACK delegate."""

    path: Path
    inspection: Inspection
    threads: int
    _interpreter: Any = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def active_providers(self) -> tuple[str, ...]:
        return ("LiteRT XNNPACK",)

    def describe(self) -> str:
        return f"LiteRT {litert_version() or ''} interpreter, XNNPACK delegate, {self.threads} threads"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """N x 3 x H x W float32 in (H x W the card's input size), N x C x h x w float32 scores out."""
        size = tuple(self.card.input_size)
        if batch.ndim != 4 or batch.shape[1] != 3 or tuple(batch.shape[2:]) != size:
            raise ModelFileError(run_failure(self.path, tuple(batch.shape), self.card,
                                             ValueError("the model takes one static input size")))
        return np.concatenate([self._run_one(batch[i : i + 1]) for i in range(batch.shape[0])])

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        nhwc = self.card.layout == "NHWC"
        feed = np.ascontiguousarray(x.transpose(0, 2, 3, 1) if nhwc else x)
        interpreter = self._interpreter
        with self._lock:
            source = interpreter.get_input_details()[0]
            interpreter.set_tensor(source["index"], _quantized(feed, source))
            try:
                interpreter.invoke()
            except Exception as exc:  # noqa: BLE001  (the interpreter raises RuntimeError with the kernel's message)
                raise ModelFileError(run_failure(self.path, tuple(x.shape), self.card, exc)) from None
            sink = interpreter.get_output_details()[0]
            out = _dequantized(interpreter.get_tensor(sink["index"]), sink)
        if (self.card.output_layout or self.card.layout) == "NHWC":
            out = out.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out, dtype=np.float32)


def open_litert(path: str | Path, threads: int | None = None, overrides: Mapping[str, Any] | None = None) -> LiteRTSession:
    """Open `path` (.tflite) on LiteRT's interpreter; `overrides` are card fields replacing the file's."""
    path = check_model_path(path)
    overrides = dict(overrides or {})
    count = check_threads(threads) or usable_cpus()
    content = path.read_bytes()
    try:
        card, target = read_card(content)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    interpreter_class = _interpreter_class()
    try:
        with native_stderr_captured():  # LiteRT logs the delegate it creates to descriptor 2
            interpreter = interpreter_class(model_content=content, num_threads=count)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: LiteRT cannot load it ({str(exc).strip().splitlines()[0]})") from None
    inputs = tuple(_info(d) for d in interpreter.get_input_details())
    outputs = tuple(_info(d) for d in interpreter.get_output_details())
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise ModelFileError(f"{path}: a segmentation model takes one 4-d image input; this one takes "
                             f"{', '.join(i.describe() for i in inputs)}")
    inspection = inspect_stored(card or _foreign_card(path, inputs, outputs), overrides, inputs, outputs, target)
    check_overrides(path, overrides, inspection, card)
    if inspection.card.dynamic:
        inspection = inspect_stored(inspection.card.with_overrides(dynamic=False), {}, inputs, outputs, target)
    return LiteRTSession(path=path, inspection=inspection, threads=count, _interpreter=interpreter)


def _foreign_card(path: Path, inputs: tuple[TensorInfo, ...], outputs: tuple[TensorInfo, ...]) -> ModelCard:
    """A .tflite exported elsewhere: its layout, size and classes from the tensors' shapes (ImageNet
    normalisation unless the card options say otherwise)."""
    shape, out = inputs[0].shape, outputs[0].shape
    nhwc = shape[3] == 3 and shape[1] != 3
    size = (int(shape[1]), int(shape[2])) if nhwc else (int(shape[2]), int(shape[3]))  # type: ignore[arg-type]
    classes = int(out[3] if nhwc else out[1]) if len(out) == 4 else 2  # type: ignore[arg-type]
    return ModelCard.for_foreign_model(path.stem or "model", max(classes, 1), layout="NHWC" if nhwc else "NCHW",
                                       input_size=size, dynamic=False, batch=int(shape[0]))  # type: ignore[arg-type]


def _info(detail: Mapping[str, Any]) -> TensorInfo:
    return TensorInfo(str(detail["name"]), _TYPES.get(detail["dtype"], str(detail["dtype"])),
                      tuple(int(d) for d in detail["shape"]))


def _quantized(x: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x
    scale, zero = detail["quantization"]
    if not scale:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantized(y: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if y.dtype == np.float32 or not scale:
        return y.astype(np.float32, copy=False)
    return (y.astype(np.float32) - zero) * scale
