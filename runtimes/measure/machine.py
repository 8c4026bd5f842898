"""What machine a number was measured on: CPU, usable cores, GPU, library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from functools import lru_cache
from pathlib import Path

from ..errors import UsageError

# A higher thread count is a typo or an attack: ONNX Runtime starts every thread asked for, and
# 100,000 brought the machine to a halt.
MAX_THREADS = 1024

# What decides which kernels run: AVX2/FMA (fp32), AVX-512, VNNI (int8 dot products), AMX and
# AVX-512 BF16 (bf16/int8 matrix units that OpenVINO and oneDNN use), F16C (fp16 conversion).
_FLAGS_THAT_MATTER = ("fma", "f16c", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                      "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")


def usable_cpus() -> int:
    """CPUs this process may really use: affinity mask and cgroup CPU quota, not the host count."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        count = max(1, min(count, int(quota + 0.999)))
    return count


def check_threads(threads: int | None) -> int | None:
    """`threads` when it is an intra-op thread count segedge accepts (0 or None: the usable CPUs)."""
    if threads is not None and not 0 <= threads <= MAX_THREADS:
        raise UsageError(f"threads must be in 1..{MAX_THREADS} (0 or None: the usable CPUs), got {threads}")
    return threads


def _cgroup_cpu_quota() -> float | None:
    try:  # cgroup v2
        text_quota, text_period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if text_quota == "max" else int(text_quota) / int(text_period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def int8_dot_saturates() -> bool:
    """Whether ONNX Runtime's uint8 x int8 kernels saturate on this CPU: x86 with AVX2 but without VNNI
    (AVX512-VNNI, AVX-VNNI) or AMX, where they add pairs of products in 16 bits (`vpmaddubsw`). ORT's
    quantization guide answers it with 7-bit weights (`reduce_range`); Arm CPUs and unknown ones: False."""
    flags = cpu_flags()
    return "avx2" in flags and not {"avx512_vnni", "avx_vnni", "amx_int8"} & flags


def cpu_flags() -> set[str]:
    """The flags of `cpu_info` that decide which kernels run (empty where /proc/cpuinfo is missing)."""
    flags = cpu_info()["flags"]
    return set(flags) if isinstance(flags, list) else set()


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, object]:
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "model": model,
        "flags": [f for f in _FLAGS_THAT_MATTER if f in flags],
        "logical_cores": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "affinity": _affinity(),
        "cgroup_cpu_quota": _cgroup_cpu_quota(),
    }


def _affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None


def _nvidia_smi(*args: str) -> str | None:
    try:
        return subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def gpu_info() -> list[dict[str, str]]:
    """NVIDIA GPUs as nvidia-smi reports them (with the CUDA version the driver supports); empty without one."""
    out = _nvidia_smi("--query-gpu=name,driver_version,memory.total", "--format=csv,noheader")
    if out is None:
        return []
    header = _nvidia_smi() or ""
    match = re.search(r"CUDA Version:\s*([0-9.]+)", header)
    gpus = []
    for line in out.strip().splitlines():
        name, driver, memory = (p.strip() for p in line.split(",")[:3])
        gpus.append({"name": name, "driver": driver, "memory": memory, "cuda": match.group(1) if match else "?"})
    return gpus


def process_gpu_memory_mb(pid: int | None = None) -> float | None:
    """GPU memory this process holds, all devices together (None without nvidia-smi)."""
    out = _nvidia_smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
    if out is None:
        return None
    pid = os.getpid() if pid is None else pid
    total = 0.0
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0] == str(pid) and parts[1].replace(".", "", 1).isdigit():
            total += float(parts[1])
    return total


def package_versions(names: tuple[str, ...] = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino",
                                               "torch", "onnx", "onnxsim", "openvino", "numpy", "matplotlib")) -> dict[str, str]:
    """Installed version of each named distribution; those not installed are left out."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def machine_record(threads: int | None = None) -> dict[str, object]:
    """Everything a reader needs to judge a timing: CPU and its flags, CPUs usable and used, GPUs, versions."""
    return {
        "cpu": cpu_info(),
        "threads_used": threads if threads is not None else usable_cpus(),
        "gpus": gpu_info(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": package_versions(),
    }
