"""Execution providers: the user's word -> ONNX Runtime's providers, and no silent fallback.

ONNX Runtime quietly runs on the CPU when a requested provider cannot start. segedge compares the
providers really active after session creation with the request and raises `ProviderError`
naming what is missing instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import onnxruntime as ort

from .errors import ProviderError

CPU = "CPUExecutionProvider"


class Provider(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"
    openvino = "openvino"
    coreml = "coreml"
    directml = "directml"
    auto = "auto"


ORT_NAMES: dict[Provider, str] = {
    Provider.cpu: CPU,
    Provider.cuda: "CUDAExecutionProvider",
    Provider.tensorrt: "TensorrtExecutionProvider",
    Provider.openvino: "OpenVINOExecutionProvider",
    Provider.coreml: "CoreMLExecutionProvider",
    Provider.directml: "DmlExecutionProvider",
}

# What `auto` prefers, best first. TensorRT is left out: building its engine takes minutes
# the first time, which a user asking for "whatever is best" does not expect.
AUTO_ORDER = (Provider.cuda, Provider.openvino, Provider.coreml, Provider.directml, Provider.cpu)

_INSTALL_HINT = {
    Provider.cuda: "install onnxruntime-gpu (instead of onnxruntime) with matching CUDA and cuDNN",
    Provider.tensorrt: "install onnxruntime-gpu with TensorRT libraries on the library path",
    Provider.openvino: "install onnxruntime-openvino (instead of onnxruntime)",
    Provider.coreml: "use the onnxruntime wheel for macOS",
    Provider.directml: "install onnxruntime-directml on Windows",
}


@dataclass(frozen=True)
class ProviderOptions:
    """Options that matter per provider; only the requested provider's are passed on."""

    device_id: int = 0
    # HEURISTIC: EXHAUSTIVE re-searches cuDNN algorithms for every new input shape, which makes
    # dynamic-shape models crawl; DEFAULT picks fast but often slower kernels.
    cudnn_conv_algo_search: str = "HEURISTIC"
    trt_fp16: bool = False
    trt_int8: bool = False
    trt_cache_dir: Path | None = None
    openvino_device: str = "CPU"
    openvino_precision: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def available() -> list[str]:
    return list(ort.get_available_providers())


def resolve(provider: Provider | str) -> Provider:
    """`auto` -> the best provider this onnxruntime build has."""
    try:
        provider = Provider(provider)
    except ValueError:
        choices = ", ".join(p.value for p in Provider)
        raise ProviderError(f"unknown provider {provider!r}; choose one of {choices}") from None
    if provider is not Provider.auto:
        return provider
    have = set(available())
    return next(p for p in AUTO_ORDER if ORT_NAMES[p] in have)


def provider_chain(provider: Provider, options: ProviderOptions = ProviderOptions()) -> list[tuple[str, dict[str, Any]]]:
    """The (name, options) list for `InferenceSession(providers=...)`.

    CPU always comes last: a GPU provider hands the nodes it has no kernel for to the CPU, and
    `strict` checks (`node_placement`) report those instead of forbidding them up front.
    """
    if provider is Provider.cpu:
        return [(CPU, {})]
    name = ORT_NAMES[provider]
    if name not in available():
        raise ProviderError(
            f"{provider.value} provider requested but this onnxruntime has only "
            f"{', '.join(available())}: {_INSTALL_HINT.get(provider, 'install a build that has it')}"
        )
    return [(name, _options_for(provider, options)), (CPU, {})]


def _options_for(provider: Provider, o: ProviderOptions) -> dict[str, Any]:
    if provider is Provider.cuda:
        opts = {"device_id": o.device_id, "cudnn_conv_algo_search": o.cudnn_conv_algo_search}
    elif provider is Provider.tensorrt:
        opts = {"device_id": o.device_id, "trt_fp16_enable": o.trt_fp16, "trt_int8_enable": o.trt_int8}
        if o.trt_cache_dir is not None:
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(o.trt_cache_dir))
    elif provider is Provider.openvino:
        opts = {"device_type": o.openvino_device}
        if o.openvino_precision:
            opts["precision"] = o.openvino_precision
    elif provider is Provider.directml:
        opts = {"device_id": o.device_id}
    else:
        opts = {}
    return {**opts, **o.extra}


def check_active(session: ort.InferenceSession, provider: Provider) -> list[str]:
    """Raise when the requested provider is not active on `session`; return the active ones."""
    active = list(session.get_providers())
    wanted = ORT_NAMES[provider]
    if wanted not in active:
        raise ProviderError(
            f"{provider.value} provider did not start (active: {', '.join(active)}): "
            f"{_why_inactive(provider)}"
        )
    return active


def _why_inactive(provider: Provider) -> str:
    if provider in (Provider.cuda, Provider.tensorrt):
        return "no usable GPU, or the CUDA/cuDNN (and TensorRT) libraries are missing from the library path"
    return "the provider failed to initialise on this machine"
