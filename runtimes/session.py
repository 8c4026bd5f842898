"""Opening an ONNX model for inference: checks, providers, threads, and its model card."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .card import CARD_KEY, ModelCard
from .errors import ModelFileError, ProviderError, UsageError
from .external_data import check_external_data
from .machine import usable_cpus
from .node_placement import NodePlacement, assigned_placement, record_assignment
from .providers import Provider, ProviderOptions, check_active, prepare, provider_chain, resolve, why_inactive

_FLOAT_TYPES = ("tensor(float)", "tensor(float16)")
# A declared input dimension past this is a hostile or broken model, not a real image or batch.
_MAX_STATIC_DIM = 1 << 16
MAX_THREADS = 1024


@dataclass(frozen=True)
class ModelSession:
    """An ONNX Runtime session with what segedge learned while opening it."""

    session: ort.InferenceSession
    path: Path
    provider: Provider
    active_providers: tuple[str, ...]
    threads: int
    card: ModelCard | None
    input_name: str
    output_name: str
    input_type: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one N x 3 x H x W batch; float32 in (cast for fp16-input models), float32 out."""
        if self.input_type == "tensor(float16)":
            batch = batch.astype(np.float16)
        out = self.session.run([self.output_name], {self.input_name: batch})[0]
        return out.astype(np.float32, copy=False)

    def placement(self) -> NodePlacement | None:
        """Nodes per provider as ORT assigned them (None when this onnxruntime cannot tell)."""
        return assigned_placement(self.session, self.provider)


def check_model_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"model path is not a file: {path}")
    check_external_data(path)
    return path


def session_options(threads: int | None = None, spinning: bool = True) -> ort.SessionOptions:
    """ORT options segedge opens every model with.

    `spinning=False` parks ORT's idle intra-op threads at once instead of letting them spin-wait for
    the next run. Benchmarks that interleave runtimes need it: measured on deeplabv3plus at 384x384,
    2 threads, PyTorch eager ran 461 ms right after a spinning ORT session and 420 ms after one that
    does not spin, while ORT itself took 345 ms either way.
    """
    if threads is not None and not 0 <= threads <= MAX_THREADS:
        # ONNX Runtime starts every thread asked for: 100,000 brought the machine to a halt.
        raise UsageError(f"threads must be in 1..{MAX_THREADS} (0 or None: the usable CPUs), got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or usable_cpus()
    opts.inter_op_num_threads = 1
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's logger writes warnings (e.g. about unused initializers) straight to stderr.
    opts.log_severity_level = 3
    record_assignment(opts)
    return opts


def open_session(
    path: str | os.PathLike[str],
    provider: Provider | str = Provider.cpu,
    threads: int | None = None,
    options: ProviderOptions = ProviderOptions(),
    sess_options: ort.SessionOptions | None = None,
    spinning: bool = True,
) -> ModelSession:
    """Open `path` on `provider`; raise when it is not a one-image-in, one-map-out model.

    The requested provider must be active afterwards (no silent CPU fallback). `spinning=False`:
    see `session_options` (for sessions timed beside other runtimes).
    """
    path = check_model_path(path)
    resolved = resolve(provider)
    chain = provider_chain(resolved, options)
    opts = sess_options or session_options(threads, spinning)
    prepare(resolved)
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=chain)
    except Exception as exc:  # onnxruntime raises its own exception types per failure kind
        if resolved is not Provider.cpu and _names_provider(exc):
            raise ProviderError(f"{resolved.value} provider failed to start: {_first_line(exc)} "
                                f"({why_inactive(resolved)})") from None
        raise ModelFileError(f"{path}: cannot load as an ONNX model: {_first_line(exc)}") from None
    active = check_active(session, resolved)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelFileError(f"{path}: a segmentation model takes one image input, this one takes {len(inputs)} ({names})")
    image = inputs[0]
    if len(image.shape) != 4 or image.type not in _FLOAT_TYPES:
        raise ModelFileError(
            f"{path}: input {image.name!r} is {image.type} of rank {len(image.shape)}; "
            "segedge needs a float N x 3 x H x W image input"
        )
    too_big = [d for d in image.shape if isinstance(d, int) and d > _MAX_STATIC_DIM]
    if too_big:
        raise ModelFileError(f"{path}: input {image.name!r} declares a dimension of {too_big[0]}, beyond any real image")
    return ModelSession(
        session=session,
        path=path,
        provider=resolved,
        active_providers=tuple(active),
        threads=opts.intra_op_num_threads,
        card=read_card(session),
        input_name=image.name,
        output_name=outputs[0].name,
        input_type=image.type,
    )


def read_card(session: ort.InferenceSession) -> ModelCard | None:
    """The model card stored at export, or None for a model exported elsewhere."""
    text = session.get_modelmeta().custom_metadata_map.get(CARD_KEY)
    return None if text is None else ModelCard.from_json(text)


def _names_provider(exc: BaseException) -> bool:
    """A session creation failure caused by the provider (its libraries, device), not the model."""
    text = str(exc).lower()
    return any(word in text for word in ("executionprovider", "cuda", "cudnn", "tensorrt", "openvino", "dml", "coreml"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    # ORT prefixes messages with "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : ".
    return line.split(" : ")[-1] if line.startswith("[ONNXRuntimeError]") else line
