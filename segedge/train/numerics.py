"""Training numerics: the CPU's fastest kernels, or kernels that round alike on every x86-64 CPU.

One recipe trained different weights on different machines: the tests' `SMALL` U-Net reached
held-out mIoU 0.80 on an AVX2-only AMD EPYC and 0.82 on AVX-512 CPUs, and lost 1.5 mIoU points in
int8 on the first against 0.21 on the others (docs/demo-weights.md). Nothing was wrong on either:
ATen picks its kernels by the CPU's vector width, oneDNN and MKL by its instruction set and cache
sizes, and each sums a reduction in its own order; a thousand optimizer steps carry a last-bit
difference into other weights. `portable` numerics remove each of those choices:

- ATen's AVX2 kernels (`ATEN_CPU_CAPABILITY=avx2`), on AVX-512 CPUs too;
- MKL's GEMM on its `COMPATIBLE` branch in strict mode (`MKL_CBWR=COMPATIBLE,STRICT`): the one
  branch MKL keeps alike on Intel and AMD CPUs (its AVX2 branch is for Intel CPUs only), and strict
  mode keeps results alike whatever the arrays' alignment;
- convolutions without oneDNN, whose blocking follows the cache sizes: ATen's im2col and that GEMM;
- the recipe's fixed thread count.

They cost about 3x in time (`SMALL`: 0.53 s a step against 0.19 s, one thread of a 2-core EPYC), so
the tests' and benchmarks' small recipes use them and the demo recipes, which must train within
a README command's minutes, keep `native` numerics (and bf16 where the CPU has it). ATen and MKL
read their settings once, when they start: portable training runs in a child process
(`segedge.train.worker`) started with them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

NUMERICS = ("native", "portable")
PORTABLE_ENV: Mapping[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE,STRICT"}


def child_env(numerics: str, threads: int) -> dict[str, str]:
    """The environment of a training child: the thread count fixed, and portable settings where asked for."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if numerics == "portable":
        env.update(PORTABLE_ENV)
    return env


def apply(numerics: str) -> dict[str, object]:
    """Set what can be set inside the process (oneDNN off); returns the numerics in force, for the record."""
    import torch

    if numerics == "portable":
        torch.backends.mkldnn.set_flags(False)  # convolutions: ATen's im2col and MKL's GEMM
    return {
        "numerics": numerics,
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_cbwr": os.environ.get("MKL_CBWR", ""),
        "onednn": bool(torch.backends.mkldnn.enabled),
    }
