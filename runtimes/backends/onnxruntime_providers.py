"""Execution providers: the user's word -> ONNX Runtime's providers, and no silent fallback.

ONNX Runtime quietly runs on the CPU when a requested provider cannot start. segedge compares the
providers really active after session creation with the request and raises `ProviderError`
naming what is missing instead: the onnxruntime build (wheel), the GPU libraries, or the device.
"""

from __future__ import annotations

import ctypes
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import onnxruntime as ort

from ..errors import ProviderError
from ..measure.machine import package_versions

CPU = "CPUExecutionProvider"


class Provider(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"
    openvino = "openvino"
    coreml = "coreml"
    directml = "directml"
    auto = "auto"

    @property
    def on_gpu(self) -> bool:
        """Providers that run on an accelerator, so a node on the CPU provider is a fallback."""
        return self in (Provider.cuda, Provider.tensorrt, Provider.coreml, Provider.directml)

    @property
    def ort_name(self) -> str:
        return ORT_NAMES[self]


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

# The onnxruntime distribution that carries each provider (they conflict: install one).
WHEELS: dict[Provider, str] = {
    Provider.cpu: "onnxruntime",
    Provider.cuda: "onnxruntime-gpu",
    Provider.tensorrt: "onnxruntime-gpu",
    Provider.openvino: "onnxruntime-openvino",
    Provider.coreml: "onnxruntime",
    Provider.directml: "onnxruntime-directml",
}
_ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")

_INSTALL_HINT = {
    Provider.cuda: "pip uninstall onnxruntime && pip install onnxruntime-gpu (with the CUDA and cuDNN 9 libraries it is built for: CUDA 13 for 1.31)",
    Provider.tensorrt: "pip install onnxruntime-gpu and put the TensorRT libraries on the library path",
    Provider.openvino: "pip uninstall onnxruntime && pip install onnxruntime-openvino (or use --compare openvino for OpenVINO's own runtime)",
    Provider.coreml: "the CoreML provider ships in the macOS onnxruntime wheel only",
    Provider.directml: "pip install onnxruntime-directml (Windows only)",
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
    # OpenVINO's INFERENCE_PRECISION_HINT (f32, bf16, f16): bf16 runs an fp32 file ~2.5x faster on
    # CPUs with AVX512-BF16 or AMX. `RuntimeSpec` checks it and keeps it equal to its own `hint`.
    openvino_hint: str | None = None
    # Escape hatch for provider options segedge does not model; merged last.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    """What a request resolved to, and why (for `auto`)."""

    provider: Provider
    reason: str


def available() -> list[str]:
    return list(ort.get_available_providers())


def parse(provider: Provider | str) -> Provider:
    try:
        return Provider(provider)
    except ValueError:
        choices = ", ".join(p.value for p in Provider)
        raise ProviderError(f"unknown provider {provider!r}; choose one of {choices}") from None


def resolve(provider: Provider | str) -> Provider:
    """`auto` -> the best provider this onnxruntime build has."""
    return explain(provider).provider


def explain(provider: Provider | str) -> Resolved:
    """Like `resolve`, with the sentence `auto` owes the user about its choice."""
    provider = parse(provider)
    if provider is not Provider.auto:
        return Resolved(provider, "requested")
    have = set(available())
    for candidate in AUTO_ORDER:
        if candidate.ort_name not in have:
            continue
        if candidate is Provider.cuda and not has_nvidia_device():
            continue  # an onnxruntime-gpu wheel on a machine without a GPU
        skipped = [p.value for p in AUTO_ORDER[: AUTO_ORDER.index(candidate)]]
        why = f"best of {', '.join(p.value for p in AUTO_ORDER if p.ort_name in have)} available"
        if skipped:
            why += f"; not available here: {', '.join(skipped)}"
        return Resolved(candidate, why)
    return Resolved(Provider.cpu, "nothing better available")


def provider_chain(provider: Provider, options: ProviderOptions = ProviderOptions()) -> list[tuple[str, dict[str, Any]]]:
    """The (name, options) list for `InferenceSession(providers=...)`.

    CPU always comes last: a GPU provider hands the nodes it has no kernel for to the CPU, and
    `--strict` (`runtimes.model.node_placement`) reports those instead of forbidding them up front.
    """
    provider = resolve(provider)
    if provider is Provider.cpu:
        return [(CPU, {})]
    if provider.ort_name not in available():
        raise ProviderError(missing_provider_message(provider))
    chain = [(provider.ort_name, options_for(provider, options))]
    if provider is Provider.tensorrt and Provider.cuda.ort_name in available():
        # What TensorRT rejects runs on CUDA, not on the CPU (ONNX Runtime's recommended order).
        chain.append((Provider.cuda.ort_name, options_for(Provider.cuda, options)))
    return [*chain, (CPU, {})]


def options_for(provider: Provider, o: ProviderOptions) -> dict[str, Any]:
    """ONNX Runtime's option dict for one provider (its keys, its string conventions)."""
    if provider is Provider.cuda:
        opts: dict[str, Any] = {"device_id": o.device_id, "cudnn_conv_algo_search": o.cudnn_conv_algo_search}
    elif provider is Provider.tensorrt:
        opts = {"device_id": o.device_id, "trt_fp16_enable": o.trt_fp16, "trt_int8_enable": o.trt_int8}
        if o.trt_cache_dir is not None:
            # Building an engine takes minutes; the cache makes the second session start in seconds.
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(o.trt_cache_dir),
                        trt_timing_cache_enable=True, trt_timing_cache_path=str(o.trt_cache_dir))
    elif provider is Provider.openvino:
        opts = {"device_type": o.openvino_device}
        if o.openvino_precision:
            opts["precision"] = o.openvino_precision
        if o.openvino_hint:
            opts["load_config"] = json.dumps({o.openvino_device: {"INFERENCE_PRECISION_HINT": o.openvino_hint}})
    elif provider is Provider.directml:
        opts = {"device_id": o.device_id}
    else:
        opts = {}
    return {**opts, **o.extra}


def check_active(session: ort.InferenceSession, provider: Provider) -> list[str]:
    """Raise when the requested provider is not active on `session`; return the active ones."""
    active = list(session.get_providers())
    if provider.ort_name not in active:
        raise ProviderError(
            f"{provider.value} provider did not start (active: {', '.join(active)}): {why_inactive(provider)}"
        )
    return active


def missing_provider_message(provider: Provider) -> str:
    """One line: the provider is not in this onnxruntime build, which build is installed, the fix."""
    installed = installed_ort_distributions()
    have = ", ".join(f"{name} {version}" for name, version in installed.items()) or "an onnxruntime build"
    message = (f"{provider.value} provider requested but {have} has only {', '.join(available())}: "
               f"{_INSTALL_HINT.get(provider, 'install an onnxruntime build that has it')}")
    if len(installed) > 1:
        message += f" (several onnxruntime builds are installed and overwrite each other: keep only {WHEELS[provider]})"
    return message


def why_inactive(provider: Provider) -> str:
    """The build has the provider but it did not start: name the missing device or library."""
    if provider in (Provider.cuda, Provider.tensorrt):
        if not has_nvidia_device():
            return "no NVIDIA GPU is visible to this process (no /dev/nvidia0 or nvidia-smi; check CUDA_VISIBLE_DEVICES)"
        missing = missing_cuda_libraries(with_tensorrt=provider is Provider.tensorrt)
        if missing:
            return (f"cannot load {', '.join(missing)}: install the CUDA/cuDNN runtime "
                    "(e.g. pip install 'onnxruntime-gpu[cuda,cudnn]') or add it to LD_LIBRARY_PATH")
        return "the GPU libraries load, but the provider failed to initialise (driver too old for this CUDA?)"
    if provider is Provider.openvino:
        return "OpenVINO could not open the requested device (see --openvino-device)"
    return "the provider failed to initialise on this machine"


def installed_ort_distributions() -> dict[str, str]:
    return package_versions(_ORT_DISTRIBUTIONS)


def has_nvidia_device() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/dxg").exists()  # Linux, WSL


# The sonames onnxruntime-gpu loads, each with its alternatives: 1.19-1.2x are built for CUDA 12,
# later releases (1.31: CUDA 13) for CUDA 13; cuDNN 9 and TensorRT 10 for both.
_CUDA_LIBRARIES = (("libcudart.so.13", "libcudart.so.12"), ("libcublas.so.13", "libcublas.so.12"), ("libcudnn.so.9",))
_TENSORRT_LIBRARIES = (("libnvinfer.so.10",), ("libnvonnxparser.so.10",))


def missing_cuda_libraries(with_tensorrt: bool = False) -> list[str]:
    if os.name != "posix":
        return []
    _preload_pip_cuda()
    wanted = _CUDA_LIBRARIES + (_TENSORRT_LIBRARIES if with_tensorrt else ())
    return [" or ".join(names) for names in wanted if not any(_loads(name) for name in names)]


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def _preload_pip_cuda() -> None:
    """onnxruntime-gpu can load CUDA/cuDNN from the nvidia-* pip wheels (as torch installs them)."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        preload()
    except Exception:  # absent wheels are reported by the library check that follows
        pass


def prepare(provider: Provider) -> None:
    """Work before session creation that makes a GPU provider start where it can."""
    if provider in (Provider.cuda, Provider.tensorrt):
        _preload_pip_cuda()
