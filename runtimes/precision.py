"""The one spelling of a model's numeric precision, shared by the card, the presets and every verb."""

from __future__ import annotations

from enum import Enum


class Precision(str, Enum):
    """What a model file computes in: the card records it, `runtimes.parity.PRESETS` judges by it."""

    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"

    def __str__(self) -> str:  # "fp32" in messages and f-strings, not "Precision.fp32"
        return self.value
