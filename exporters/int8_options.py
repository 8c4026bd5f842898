"""The int8 quantizer's choices, apart from the quantizer: the CLI names them in its options
without paying for `onnxruntime.quantization`'s import."""

from __future__ import annotations

from enum import Enum

DEFAULT_CALIB_COUNT = 32


class Method(str, Enum):
    """How activation ranges are chosen from the calibration images."""

    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


class Activations(str, Enum):
    uint8 = "uint8"
    int8 = "int8"
