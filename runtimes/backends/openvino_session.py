"""OpenVINO's own runtime behind the Predictor (`Predictor(path, runtime="openvino")`, `segedge[openvino]`).

`OpenVINOSession` offers what `runtimes.backends.onnxruntime_session.ModelSession` does (path, card, inspection,
`run(batch)` taking N x 3 x H x W float32 and giving N x C x h x w float32 scores whatever the
model's layout and element type) and says what it really runs: the device and the inference
precision OpenVINO chose or was told (`hint`: f32, bf16, f16; None lets OpenVINO choose, bf16 on
CPUs with AVX512-BF16 or AMX).

OpenVINO's CPU plugin picks its kernels per static shape and runs dynamic shapes slower, so the
model is reshaped and compiled once per input shape (as `benchmark_app -shape` does), and the
compiled models are kept in a small LRU cache: tiles share one shape, and a service seeing a few
image sizes compiles each once. Compiled models are thread-safe, infer requests are not: each
call takes an idle request of its shape's pool (or makes one) and gives it back, so one
Predictor serves any number of threads.

The card: a segedge IR carries it in `rt_info` (`segedge` -> `card`, see
`exporters.targets.openvino_ir`), an ONNX file in its metadata, which OpenVINO's ONNX frontend
keeps under `rt_info` -> `framework`. A file without one is inspected by `runtimes.model.inspection`
through ONNX Runtime (in the base install), so both runtimes see the same card.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.card import CARD_KEY, TARGET_KEY, ModelCard
from ..model.card_checks import check_overrides
from ..errors import CardError, ModelFileError, ProviderError, UsageError
from .messages import runtime_reason
from ..model.inspection import InspectedCard, Inspection, TensorInfo, inspect_stored
from ..measure.machine import check_threads, usable_cpus
from ..imaging.postprocess import one_hot
from .base import check_hint
from .onnxruntime_session import _chunks, as_model_feed, check_model_path, run_failure

DEFAULT_CACHED_SHAPES = 8  # compiled models kept (each holds its own kernels and scratch memory)
IR_CARD = ("segedge", "card")  # exporters.targets.openvino_ir.RT_INFO_KEY
ONNX_CARD = ("framework", CARD_KEY)  # an ONNX file's metadata_props, as OpenVINO's frontend keeps them
_INPUT_TYPES = {"f32": "tensor(float)", "f16": "tensor(float16)", "u8": "tensor(uint8)"}
_ORT_TYPES = {"f32": "tensor(float)", "f16": "tensor(float16)", "bf16": "tensor(bfloat16)", "i64": "tensor(int64)",
              "i32": "tensor(int32)", "u8": "tensor(uint8)", "i8": "tensor(int8)", "u16": "tensor(uint16)",
              "i16": "tensor(int16)"}


def openvino_version() -> str | None:
    try:
        return importlib.metadata.version("openvino")
    except importlib.metadata.PackageNotFoundError:
        return None


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise ProviderError("OpenVINO's runtime is not installed: pip install 'segedge[openvino]'") from None
    return openvino


class _Compiled:
    """One compiled model (static shapes) and its idle infer requests."""

    def __init__(self, compiled: Any, output_index: int) -> None:
        self.compiled = compiled
        self.output_index = output_index
        port = compiled.outputs[output_index]
        self.output_shape = tuple(int(d) for d in port.get_shape())
        self.output_dtype = np.dtype(port.get_element_type().to_dtype())
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def infer(self, x: np.ndarray) -> np.ndarray:
        ov = import_openvino()
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self.compiled.create_infer_request()
        try:
            # OpenVINO writes straight into a fresh array of ours, and reads the input where it lies:
            # no copy either way (a DeepLab v3+ output at 512 x 512 is 22 MB).
            out = np.empty(self.output_shape, self.output_dtype)
            request.set_output_tensor(self.output_index, ov.Tensor(out, shared_memory=True))
            request.infer({0: x}, share_inputs=True)
            return out
        finally:
            self._idle.put(request)


@dataclass
class OpenVINOSession(InspectedCard):
    """A model opened with OpenVINO; `run` compiles (and caches) it for each new input shape."""

    path: Path
    inspection: Inspection
    device: str
    hint: str | None  # what was asked for; None: OpenVINO's choice
    threads: int
    input_type: str
    max_shapes: int
    _core: Any = field(repr=False)
    _model: Any = field(repr=False)  # the model as read (dynamic shapes); each shape compiles a reshaped clone
    _output_index: int = 0
    _cache: OrderedDict[tuple[tuple[int, ...], bool], _Compiled] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _compile_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def precision(self) -> str:
        """The inference precision OpenVINO runs the float parts at (f32, bf16, f16)."""
        if self.hint is not None:
            return self.hint
        return _type_name(self._core.get_property(self.device, "INFERENCE_PRECISION_HINT"))

    @property
    def active_providers(self) -> tuple[str, ...]:
        """In the Predictor's `providers` slot: what runs the model."""
        return (f"OpenVINO {self.device} ({self.precision})",)

    def describe(self) -> str:
        return f"OpenVINO {openvino_version() or ''} {self.device}, {self.precision} inference, {self.threads} threads"

    def cached_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The input shapes compiled models are kept for, least recently used first."""
        with self._lock:
            return tuple(dict.fromkeys(shape for shape, _ in self._cache))

    @property
    def labels_in_graph(self) -> bool:
        """Whether `labels` can take the argmax into the compiled model: C class scores at the input's
        resolution, channels first, one byte a label."""
        card = self.card
        return (card.output_kind in ("logits", "probabilities") and card.output_stride == 1 and card.layout == "NCHW"
                and 2 <= card.num_classes <= 256 and self.inspection.static_batch is None)

    def labels(self, batch: np.ndarray) -> np.ndarray | None:
        """N x h x w uint8 class indices (first maximum wins), the argmax run inside the compiled model:
        no N x C x h x w scores written out and scanned again (for DeepLab v3+ at 512 x 512, 22 MB a
        run). None when the model's output does not allow it (`labels_in_graph`)."""
        if not self.labels_in_graph:
            return None
        x = np.ascontiguousarray(as_model_feed(batch, self.card, self.input_type))
        try:
            return self.compiled_for(tuple(int(d) for d in x.shape), labels=True).infer(x)[:, 0]
        except ModelFileError:
            raise
        except Exception as exc:  # OpenVINO raises RuntimeError with the plugin's C++ message
            raise ModelFileError(run_failure(self.path, batch.shape, self.card, exc)) from None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one N x 3 x H x W float32 batch; N x C x h x w float32 scores out (one-hot for label maps)."""
        out = self._run_raw(batch)
        if self.card.output_kind == "labels":
            return one_hot(out[:, 0] if out.ndim == 4 else out, max(self.card.num_classes, 2))
        return out.astype(np.float32, copy=False)

    def _run_raw(self, batch: np.ndarray) -> np.ndarray:
        static = self.inspection.static_batch
        if static is not None and batch.shape[0] != static:
            return np.concatenate([self._run_raw(chunk) for chunk in _chunks(batch, static)])[: batch.shape[0]]
        x = np.ascontiguousarray(as_model_feed(batch, self.card, self.input_type))
        try:
            out = self.compiled_for(tuple(int(d) for d in x.shape)).infer(x)
        except ModelFileError:
            raise
        except Exception as exc:  # OpenVINO raises RuntimeError with the plugin's C++ message
            raise ModelFileError(run_failure(self.path, batch.shape, self.card, exc)) from None
        if self.inspection.channels_last_output and out.ndim == 4:
            out = out.transpose(0, 3, 1, 2)
        return out

    def compiled_for(self, shape: tuple[int, ...], labels: bool = False) -> _Compiled:
        """The model compiled for inputs of `shape` (the model's layout), from the cache or compiled now;
        with `labels`, the variant whose output is the argmax over the classes."""
        key = (shape, labels)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        with self._compile_lock:  # one compile at a time: two threads meeting a new shape compile it once
            with self._lock:
                hit = self._cache.get(key)
            if hit is None:
                hit = self._compile(shape, labels)
                with self._lock:
                    self._cache[key] = hit
                    while len(self._cache) > self.max_shapes:
                        self._cache.popitem(last=False)
        return hit

    def _compile(self, shape: tuple[int, ...], labels: bool = False) -> _Compiled:
        ov = import_openvino()
        model = self._model
        if labels or not model.inputs[0].get_partial_shape().is_static:
            model = model.clone()
        if labels:
            model = _with_argmax(model, self._output_index)
        if not model.inputs[0].get_partial_shape().is_static:
            model.reshape({model.inputs[0].get_any_name(): ov.PartialShape(list(shape))})
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1}
        if self.hint is not None:
            config["INFERENCE_PRECISION_HINT"] = self.hint
        return _Compiled(self._core.compile_model(model, self.device, config), 0 if labels else self._output_index)


def _with_argmax(model: Any, output_index: int) -> Any:
    """`model` (a clone: changed in place) with its chosen output replaced by the argmax over axis 1, as uint8."""
    ov = import_openvino()
    ops = importlib.import_module("openvino.opset13")
    result = model.get_results()[output_index]
    scores = result.input_value(0)
    top = ops.topk(scores, ops.constant(np.array(1, dtype=np.int64)), 1, "max", "none", "i32")
    labels = ops.result(ops.convert(top.output(1), ov.Type.u8))
    for other in model.get_results():  # the labels are the one output this variant computes
        model.remove_result(other)
    model.add_results([labels])
    return model


def open_openvino(
    path: str | os.PathLike[str],
    threads: int | None = None,
    *,
    hint: str | None = None,
    device: str = "CPU",
    overrides: Mapping[str, Any] | None = None,
    max_shapes: int = DEFAULT_CACHED_SHAPES,
) -> OpenVINOSession:
    """Open an .onnx or OpenVINO IR (.xml) file with OpenVINO; raise when it is not a one-image-in model."""
    path = _checked_ir(Path(path)) if Path(path).suffix.lower() == ".xml" else check_model_path(path)
    hint = check_hint(hint)
    check_threads(threads)
    if max_shapes < 1:
        raise UsageError(f"max_shapes must be >= 1, got {max_shapes}")
    ov = import_openvino()
    core = ov.Core()
    try:
        model = core.read_model(os.fspath(path))
    except Exception as exc:  # OpenVINO raises RuntimeError / its frontends' own errors
        raise ModelFileError(f"{path}: OpenVINO cannot read it: {runtime_reason(exc)}") from None
    if device not in core.available_devices:
        raise ProviderError(f"OpenVINO has no {device} device here (it has {', '.join(core.available_devices)})")
    if len(model.inputs) != 1:
        raise ModelFileError(f"{path}: a segmentation model takes one image input, this one takes {len(model.inputs)}")
    inputs = tuple(_info(port) for port in model.inputs)
    outputs = tuple(_info(port) for port in model.outputs)
    image = inputs[0]
    input_type = _INPUT_TYPES.get(model.inputs[0].get_element_type().get_type_name())
    if len(image.shape) != 4 or input_type is None:
        raise ModelFileError(f"{path}: input {image.name!r} is {image.type} of rank {len(image.shape)}; "
                             "segedge needs an N x 3 x H x W (or N x H x W x 3) float or uint8 image input")
    inspection = _inspect(path, model, inputs, outputs, dict(overrides or {}))
    check_overrides(path, dict(overrides or {}), inspection, read_openvino_card(model))  # as ONNX Runtime's session does
    names = [o.name for o in outputs]
    output_index = names.index(inspection.card.output_name) if inspection.card.output_name in names else 0
    return OpenVINOSession(path=path, inspection=inspection, device=device, hint=hint,
                           threads=threads or usable_cpus(), input_type=input_type, max_shapes=max_shapes,
                           _core=core, _model=model, _output_index=output_index)


def _checked_ir(xml: Path) -> Path:
    """An IR is its .xml and the .bin beside it (its weights): both must be there."""
    for part in (xml, xml.with_suffix(".bin")):
        if not part.is_file():
            raise ModelFileError(f"model file not found: {part}" if not part.exists() else f"model path is not a file: {part}")
    return xml


def read_openvino_card(model: Any) -> ModelCard | None:
    """The segedge card an OpenVINO model carries (an IR's rt_info, or an ONNX file's metadata)."""
    for key in (list(IR_CARD), list(ONNX_CARD)):
        if model.has_rt_info(key):
            return ModelCard.from_json(model.get_rt_info(key).astype(str))
    return None


def _target_record(model: Any) -> dict[str, Any] | None:
    for key in (["segedge", "target"], ["framework", TARGET_KEY]):
        if model.has_rt_info(key):
            try:
                return json.loads(model.get_rt_info(key).astype(str))
            except ValueError:
                return None
    return None


def _inspect(path: Path, model: Any, inputs: tuple[TensorInfo, ...], outputs: tuple[TensorInfo, ...],
             overrides: dict[str, Any]) -> Inspection:
    stored = read_openvino_card(model)
    if stored is not None:
        return inspect_stored(stored, overrides, inputs, outputs, _target_record(model))
    if path.suffix.lower() == ".xml":
        raise CardError(f"{path}: an OpenVINO IR without a segedge card; open the ONNX file it came from, whose "
                        "graph segedge can read")
    # A model exported elsewhere: the very inspection the ONNX Runtime Predictor makes, so both see one card.
    from .onnxruntime_session import open_session

    return open_session(path, "cpu", 1, overrides=overrides).inspection


def _info(port: Any) -> TensorInfo:
    dims = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
    kind = port.get_element_type().get_type_name()
    return TensorInfo(port.get_any_name(), _ORT_TYPES.get(kind, f"tensor({kind})"), dims)


def _type_name(value: Any) -> str:
    name = getattr(value, "get_type_name", None)  # ov.Type prints as "<Type: 'bfloat16'>"
    return name() if callable(name) else str(value)
