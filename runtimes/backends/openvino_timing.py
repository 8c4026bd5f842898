"""OpenVINO's own runtime on the very same ONNX file, as a benchmark peer (optional: `segedge[openvino]`).

Like `benchmark_app -shape`, the model is reshaped to the timed input's shape before compiling:
OpenVINO's CPU plugin picks its kernels per static shape and runs dynamic shapes slower.
`INFERENCE_NUM_THREADS` gets the same thread count as every other runtime; the precision OpenVINO
really runs at (it picks bf16 by itself on CPUs with AMX) is read back and put in the row's notes.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from typing import Any

import numpy as np

from ..measure.timing import Runner
from ..errors import ProviderError


def openvino_version() -> str | None:
    try:
        return importlib.metadata.version("openvino")
    except importlib.metadata.PackageNotFoundError:
        return None


def _import_openvino():
    try:
        import openvino
    except ImportError:
        raise ProviderError("OpenVINO's runtime is not installed: pip install 'segedge[openvino]'") from None
    return openvino


def openvino_runner(
    path: str | os.PathLike[str],
    input_shape: tuple[int, ...],
    threads: int,
    device: str = "CPU",
    precision_hint: str | None = None,
    name: str | None = None,
    tags: dict[str, str] | None = None,
) -> Runner:
    """Read `path` with OpenVINO, fix its input to `input_shape`, compile for `device` (latency mode)."""
    ov = _import_openvino()
    start = time.perf_counter()
    core = ov.Core()
    model = core.read_model(os.fspath(path))
    if len(model.inputs) != 1:
        raise ProviderError(f"{path}: OpenVINO sees {len(model.inputs)} inputs; segedge times one-image models")
    model.reshape({model.inputs[0].get_any_name(): ov.PartialShape(list(input_shape))})
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads),
        "NUM_STREAMS": 1,
    }
    if precision_hint:
        config["INFERENCE_PRECISION_HINT"] = precision_hint
    compiled = core.compile_model(model, device, config)
    request = compiled.create_infer_request()
    setup = time.perf_counter() - start
    input_type = np.dtype(compiled.inputs[0].get_element_type().to_dtype())

    def run(x: np.ndarray) -> np.ndarray:
        request.infer({0: x if x.dtype == input_type else x.astype(input_type)})
        return request.get_output_tensor(0).data

    inference = _property(compiled, "INFERENCE_PRECISION_HINT")
    return Runner(
        name=name or "openvino",
        runtime=f"openvino {openvino_version() or ''}".strip(),
        provider=device,
        run=run,
        setup_s=setup,
        notes=[f"OpenVINO inference precision {inference}, "
               f"{_property(compiled, 'INFERENCE_NUM_THREADS')} threads, static shape {list(input_shape)}"],
        tags={"runtime": "openvino", "provider": device.lower(), "inference_precision": inference, **(tags or {})},
    )


def _property(compiled: Any, key: str) -> str:
    try:
        value = compiled.get_property(key)
    except Exception:  # properties differ between plugins and releases
        return "?"
    name = getattr(value, "get_type_name", None)  # ov.Type prints as "<Type: 'bfloat16'>"
    return name() if callable(name) else str(value)


def session_runner(session: Any, setup_s: float, name: str | None = None) -> Runner:
    """An `OpenVINOSession` (what `Predictor(..., runtime="openvino")` runs) as a runner: the shipped path.

    The model is compiled for the timed input's shape in `prepare`, untimed, as the Predictor's
    cache would hold it after the first image of that size.
    """
    def prepare(x: np.ndarray) -> np.ndarray:
        session.run(x)  # compiles and caches the shape
        return x

    precision = session.card.precision.value
    return Runner(
        name=name or f"openvino {precision}",
        runtime=f"openvino {openvino_version() or ''}".strip(),
        provider=session.device,
        run=session.run,
        prepare=prepare,
        setup_s=setup_s,
        notes=[f"OpenVINO inference precision {session.precision}, {session.threads} threads, compiled per input shape "
               "(the Predictor's adapter)"],
        tags={"precision": precision, "runtime": "openvino", "provider": session.device.lower(),
              "hint": session.hint or "auto", "inference_precision": session.precision},
    )
