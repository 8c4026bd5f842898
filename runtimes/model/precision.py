"""The one spelling of a model's numeric precision, shared by the card, the presets and every verb."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum


class Precision(str, Enum):
    """What a model file computes in: the card records it, `runtimes.measure.parity.PRESETS` judges by it."""

    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"

    def __str__(self) -> str:  # "fp32" in messages and f-strings, not "Precision.fp32"
        return self.value


# -- what a graph computes in, read from its nodes (files exported elsewhere carry no card) ----------
# Operators that say how a file was quantized: ONNX Runtime's quantizer writes QuantizeLinear /
# DequantizeLinear pairs around float ops (QDQ), or integer operators (QOperator), or quantizes
# activations at run time (dynamic); other tools write the same three shapes.
QOPERATOR_OPS = ("QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearConcat", "QLinearSigmoid",
                 "QLinearLeakyRelu", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearReduceMean",
                 "QLinearSoftmax", "QLinearWhere", "QGemm", "QAttention")
DYNAMIC_OPS = ("DynamicQuantizeLinear", "ConvInteger", "MatMulInteger", "DynamicQuantizeMatMul",
               "MatMulIntegerToFloat", "DynamicQuantizeLSTM")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
_FLOAT16 = 10  # onnx.TensorProto.FLOAT16, the `to` of a Cast into fp16
_QDQ_COMPUTE = ("Conv", "ConvTranspose", "MatMul", "Gemm")


@dataclass(frozen=True)
class GraphPrecision:
    """What a graph computes in, and the operators that say so."""

    precision: Precision
    scheme: str  # "fp32", "fp16 inside, fp32 I/O", "fp16", "int8 QDQ", "int8 QOperator", "int8 dynamic", "mixed ..."
    evidence: str  # e.g. "ConvInteger 12, DynamicQuantizeLinear 12"

    @property
    def quantized(self) -> bool:
        return self.precision is Precision.int8

    def __str__(self) -> str:
        """"scheme: evidence", as the card's `graph_precision` holds it (`scheme_of` reads the scheme back)."""
        return self.scheme + (f": {self.evidence}" if self.evidence else "")


def scheme_of(graph_precision: str) -> str:
    """The scheme of a `GraphPrecision` written as text ("int8 dynamic: ConvInteger 6" -> "int8 dynamic")."""
    return graph_precision.split(": ", 1)[0]


def read_precision(ops: Iterable[tuple[str, Mapping[str, tuple[int, ...]]]], input_type: str,
                   output_types: Sequence[str]) -> GraphPrecision:
    """The precision of a graph from its (op type, integer attributes) and its I/O element types.

    int8 by its scheme (QOperator before QDQ: a QOperator graph has Quantize/DequantizeLinear at its
    edges too); fp16 by fp16 I/O or Casts into fp16 (onnxconverter-common's `keep_io_types`, a
    half-precision export called on float inputs); both at once is "mixed".
    """
    counts: Counter[str] = Counter()
    fp16_casts = 0
    for op_type, ints in ops:
        counts[op_type] += 1
        fp16_casts += op_type == "Cast" and ints.get("to", (0,))[0] == _FLOAT16
    fp16_io = input_type == "tensor(float16)" or "tensor(float16)" in output_types
    fp16 = fp16_io or fp16_casts > 0
    found = [(name, ops_) for name, ops_ in (("int8 QOperator", QOPERATOR_OPS), ("int8 dynamic", DYNAMIC_OPS),
                                              ("int8 QDQ", QDQ_OPS)) if any(counts[op] for op in ops_)]
    if found:
        scheme, named = found[0]
        evidence = _evidence(counts, named)
        if fp16:
            return GraphPrecision(Precision.int8, f"mixed {scheme} + fp16", f"{evidence}, Cast to fp16 {fp16_casts}")
        return GraphPrecision(Precision.int8, scheme, evidence)
    if fp16:
        io = "fp16 I/O" if fp16_io else "fp32 I/O"
        scheme = "fp16" if fp16_io and not fp16_casts else f"fp16 inside, {io}"
        return GraphPrecision(Precision.fp16, scheme, f"Cast to fp16 {fp16_casts}" if fp16_casts else "fp16 input")
    return GraphPrecision(Precision.fp32, "fp32", "")


def _evidence(counts: Counter[str], names: Sequence[str]) -> str:
    return ", ".join(f"{op} {counts[op]}" for op in names if counts[op])
