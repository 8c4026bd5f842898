"""Opening an ONNX model for inference: checks, providers, threads, and its model card."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..model.card import CARD_KEY, TARGET_KEY, ModelCard
from ..model.card_checks import check_overrides
from ..errors import ModelFileError, ProviderError, UsageError
from ..model.external_data import check_external_data
from ..measure.machine import check_threads, usable_cpus
from ..model.inspection import InspectedCard, Inspection, TensorInfo, inspect_foreign, inspect_stored
from ..model.node_placement import NodePlacement, assigned_placement, record_assignment
from ..imaging.postprocess import one_hot
from .messages import runtime_reason
from .onnxruntime_providers import Provider, ProviderOptions, check_active, prepare, provider_chain, resolve, why_inactive

_INPUT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(uint8)")
# A declared input dimension past this is a hostile or broken model, not a real image or batch.
_MAX_STATIC_DIM = 1 << 16
# ONNX Runtime's own log lines (warnings at load, errors at run: a broadcast failure prints a
# red line before the exception) must not reach the user's stderr: segedge reports failures
# itself, in one line. 4 = FATAL only.
_QUIET = 4
ort.set_default_logger_severity(_QUIET)
_RUN_OPTIONS = ort.RunOptions()
_RUN_OPTIONS.log_severity_level = _QUIET


@dataclass(frozen=True)
class ModelSession(InspectedCard):
    """An ONNX Runtime session with what segedge learned while opening it.

    `card` is always there: the file's own (`stored_card`), else what `runtimes.model.inspection` read
    from the graph and learned by probing, with the caller's overrides on top. `run` hides how
    the model wants to be fed: its layout, element type, fixed batch and output kind.
    """

    session: ort.InferenceSession
    path: Path
    provider: Provider
    active_providers: tuple[str, ...]
    threads: int
    inspection: Inspection
    input_name: str
    input_type: str

    @property
    def output_name(self) -> str:
        return self.card.output_name if self.card.output_name in self._output_names else self._output_names[0]

    @property
    def _output_names(self) -> list[str]:
        return [o.name for o in self.inspection.outputs]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one N x 3 x H x W float32 batch; N x C x h x w float32 scores out (one-hot for label maps)."""
        out = _run_raw(self, self.inspection, batch)
        if self.card.output_kind == "labels":
            return one_hot(out[:, 0] if out.ndim == 4 else out, max(self.card.num_classes, 2))
        return out.astype(np.float32, copy=False)

    def describe(self) -> str:
        return f"ONNX Runtime {ort.__version__} on {', '.join(self.active_providers)}, {self.threads} threads"

    def placement(self) -> NodePlacement | None:
        """Nodes per provider as ORT assigned them (None when this onnxruntime cannot tell)."""
        return assigned_placement(self.session, self.provider)


def _run_raw(model: ModelSession, inspection: Inspection, batch: np.ndarray) -> np.ndarray:
    """The model's output for an N x 3 x H x W float32 batch, in N x C x H x W order, its own dtype."""
    static = inspection.static_batch
    if static is not None and batch.shape[0] != static:
        return np.concatenate([_run_raw(model, inspection, chunk) for chunk in _chunks(batch, static)])[: batch.shape[0]]
    x = as_model_feed(batch, inspection.card, model.input_type)
    name = inspection.card.output_name if inspection.card.output_name in [o.name for o in inspection.outputs] \
        else inspection.outputs[0].name
    try:
        out = model.session.run([name], {model.input_name: x}, _RUN_OPTIONS)[0]
    except Exception as exc:  # onnxruntime raises its own types per failure (shape, type, broadcast...)
        raise ModelFileError(run_failure(model.path, batch.shape, inspection.card, exc)) from None
    if inspection.channels_last_output and out.ndim == 4:
        out = out.transpose(0, 3, 1, 2)
    return out


def as_model_feed(batch: np.ndarray, card: ModelCard, input_type: str) -> np.ndarray:
    """An N x 3 x H x W float32 batch as the model takes it: its layout, its element type."""
    x = batch
    if card.layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if input_type == "tensor(float16)":
        return x.astype(np.float16)
    if input_type == "tensor(uint8)":  # raw pixels: the card's normalisation is the identity
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return x


def _chunks(batch: np.ndarray, size: int) -> list[np.ndarray]:
    """`batch` in chunks of exactly `size` (the last one padded by repeating its first image)."""
    chunks = []
    for first in range(0, batch.shape[0], size):
        chunk = batch[first : first + size]
        if chunk.shape[0] < size:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], size - chunk.shape[0], axis=0)])
        chunks.append(chunk)
    return chunks


def run_failure(path: Path, shape: tuple[int, ...], card: ModelCard, exc: BaseException) -> str:
    """One line: which model failed on which input, the runtime's reason (no source paths), the size
    rule the card holds and a size that follows it."""
    n, _, h, w = shape
    if not card.dynamic:
        rule = f"it takes {card.input_size[0]} x {card.input_size[1]} only"
        works = card.input_size
    elif card.size_divisor > 1:
        rule = f"its sides must be multiples of {card.size_divisor}"
        works = (_round_up(h, card.size_divisor), _round_up(w, card.size_divisor))
    else:
        rule, works = "no size rule found (try --size-divisor 32)", (_round_up(h, 32), _round_up(w, 32))
    batch = f", batch {card.batch}" if card.batch else ""
    return (f"{path}: running on a {n} x 3 x {h} x {w} input failed ({runtime_reason(exc)}); {rule}{batch}, "
            f"e.g. {works[0]} x {works[1]} (--layout {card.layout}, --output-kind {card.output_kind})")


def _round_up(side: int, divisor: int) -> int:
    return max(divisor, -(-side // divisor) * divisor)


def check_model_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"model path is not a file: {path}")
    # The ORT format, LiteRT's .tflite and ExecuTorch's .pte are flatbuffers holding their weights themselves.
    if path.suffix.lower() not in (".ort", ".tflite", ".pte"):
        check_external_data(path)
    return path


def session_options(threads: int | None = None, spinning: bool = True) -> ort.SessionOptions:
    """ORT options segedge opens every model with.

    `spinning=False` bounds how long ORT's idle intra-op threads spin-wait: `BRIEF_SPIN_US`, then
    they park (`brief_spin_entries`), where ORT's default spins far longer. For sessions that share
    their cores: benchmarks that interleave runtimes (measured on deeplabv3plus at 384x384, 2 threads,
    PyTorch eager ran 461 ms right after a spinning ORT session and 420 ms after one that did not
    spin, while ORT itself took 345 ms either way) and `segedge predict`, whose decoding and
    encoding run beside the model.
    """
    check_threads(threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or usable_cpus()
    opts.inter_op_num_threads = 1
    if not spinning:
        for key, value in brief_spin_entries(ort.__version__).items():
            opts.add_session_config_entry(key, value)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's logger writes warnings (e.g. about unused initializers) straight to stderr.
    opts.log_severity_level = _QUIET
    record_assignment(opts)
    return opts


# Idle intra-op threads spin this long, then park. Between a run's operators the wait is shorter:
# the threads stay awake and no operator waits for one to wake (LR-ASPP 1280 x 960 on 2 threads, its
# threads parked at once, ran 3 to 6 % slower than spinning in four of six runs; with this bound
# 0.98 to 1.09 of it). Between runs they park and leave the cores to decoding and encoding, or to
# the runtime timed next; under load (3 busy processes on 2 cores) it ran as parked threads do,
# 1.2 x ORT's long spin.
BRIEF_SPIN_US = 100
_BOUNDED_SPIN_SINCE = (1, 26)  # ORT 1.26 added spin_duration_us; an older one ignores the key and spins long


def brief_spin_entries(version: str) -> dict[str, str]:
    """Session config entries for a brief spin on ONNX Runtime `version`: parking at once before 1.26."""
    release = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if release < _BOUNDED_SPIN_SINCE:
        return {"session.intra_op.allow_spinning": "0"}
    return {"session.intra_op.spin_duration_us": str(BRIEF_SPIN_US), "session.intra_op.spin_backoff_max": "8"}


def open_session(
    path: str | os.PathLike[str],
    provider: Provider | str = Provider.cpu,
    threads: int | None = None,
    options: ProviderOptions = ProviderOptions(),
    sess_options: ort.SessionOptions | None = None,
    spinning: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> ModelSession:
    """Open `path` on `provider`; raise when it is not a one-image-in, one-map-out model.

    The requested provider must be active afterwards (no silent CPU fallback). `spinning=False`:
    idle threads spin briefly, then park (`session_options`). `overrides`: model card
    fields that replace the file's (or, for a file without a card, what inspection would read).
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
            raise ProviderError(f"{resolved.value} provider failed to start: {runtime_reason(exc)} "
                                f"({why_inactive(resolved)})") from None
        raise ModelFileError(f"{path}: cannot load as an ONNX model: {runtime_reason(exc)}") from None
    active = check_active(session, resolved)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelFileError(f"{path}: a segmentation model takes one image input, this one takes {len(inputs)} ({names})")
    image = inputs[0]
    if len(image.shape) != 4 or image.type not in _INPUT_TYPES:
        raise ModelFileError(
            f"{path}: input {image.name!r} is {image.type} of rank {len(image.shape)}; "
            "segedge needs an N x 3 x H x W (or N x H x W x 3) float or uint8 image input"
        )
    too_big = [d for d in image.shape if isinstance(d, int) and d > _MAX_STATIC_DIM]
    if too_big:
        raise ModelFileError(f"{path}: input {image.name!r} declares a dimension of {too_big[0]}, beyond any real image")
    input_infos = tuple(TensorInfo(i.name, i.type, tuple(i.shape)) for i in inputs)
    output_infos = tuple(TensorInfo(o.name, o.type, tuple(o.shape)) for o in outputs)
    given = dict(overrides or {})
    stored = read_card(session)

    def opened(inspection: Inspection) -> ModelSession:
        check_overrides(path, given, inspection, stored)  # an option the file contradicts is an error, not ignored
        return ModelSession(session=session, path=path, provider=resolved, active_providers=tuple(active),
                            threads=opts.intra_op_num_threads, inspection=inspection, input_name=image.name,
                            input_type=image.type)

    if stored is not None:
        return opened(inspect_stored(stored, given, input_infos, output_infos, read_target(session)))

    def raw(provisional: Inspection) -> Callable[[np.ndarray], np.ndarray]:
        model = opened(provisional)
        return lambda x: _run_raw(model, provisional, x)

    return opened(inspect_foreign(path, input_infos, output_infos, given, raw))


def read_target(session: ort.InferenceSession) -> dict[str, Any] | None:
    """The edge-target record `segedge export --target` stored, or None."""
    text = session.get_modelmeta().custom_metadata_map.get(TARGET_KEY)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None  # a damaged record says nothing; the card still describes the model


def read_card(session: ort.InferenceSession) -> ModelCard | None:
    """The model card stored at export, or None for a model exported elsewhere."""
    text = session.get_modelmeta().custom_metadata_map.get(CARD_KEY)
    return None if text is None else ModelCard.from_json(text)


def _names_provider(exc: BaseException) -> bool:
    """A session creation failure caused by the provider (its libraries, device), not the model."""
    text = str(exc).lower()
    return any(word in text for word in ("executionprovider", "cuda", "cudnn", "tensorrt", "openvino", "dml", "coreml"))
