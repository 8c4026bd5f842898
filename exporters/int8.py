"""fp32 -> int8 with ONNX Runtime's static quantizer: QDQ, int8 per-channel weights, uint8 activations.

Steps, all of them ONNX Runtime's own tools: `quant_pre_process` (ONNX shape inference and
ORT's graph optimisation; symbolic shape inference is skipped: it fails on torch.export graphs
with "Incomplete symbolic shape inference"), then `quantize_static` calibrated on images that
`exporters.calibration` prepares exactly as the Predictor does. Every intermediate file lives in
one temporary folder that is removed whatever happens (the pre-processor alone writes ~150 MB
for DeepLab v3+ R50); the result appears atomically, or not at all.

Transformers (graphs with attention) keep LayerNorm, Softmax, GELU and attention's MatMuls in
float (`exporters.int8_float`); every other MatMul and every convolution runs in int8. The card
records both counts (`int8_ops`, `float_ops`).

uint8 activations are the default because on x86 CPUs ONNX Runtime's fast int8 kernels pair
uint8 activations with int8 weights (VNNI's u8 x s8 dot product); int8 activations measured no
faster than fp32 on DeepLab v3+ R50. On x86 CPUs without VNNI those kernels add pairs of products
in 16 bits and saturate, so there the weights get 7 bits (ORT's `reduce_range`, as its
quantization guide advises): on an AVX2-only EPYC a seeded random TINY model's int8 file agreed
with fp32 on 97.65 % of pixels through the kernels against 99.04 % run as float QDQ; with 7-bit
weights, 98.68 % both ways.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxruntime
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from runtimes.backends.messages import runtime_reason
from runtimes.model.card import ModelCard
from runtimes.errors import CardError, ExportError, UsageError
from runtimes.guards.fileio import work_folder
from runtimes.measure.machine import int8_dot_saturates

from .calibration import ImageFolderReader, calibration_images
from .card_io import embed_card, read_card_from_proto
from .float_source import tensor_type
from .int8_float import float_compute, int8_compute, transformer_float_nodes
from .int8_options import DEFAULT_CALIB_COUNT, Activations, Method
from .model_file import load_model, save_model


_ORT_METHODS = {Method.minmax: CalibrationMethod.MinMax, Method.entropy: CalibrationMethod.Entropy,
                Method.percentile: CalibrationMethod.Percentile}
_ORT_ACTIVATIONS = {Activations.uint8: QuantType.QUInt8, Activations.int8: QuantType.QInt8}


@dataclass(frozen=True)
class Int8Result:
    path: Path
    card: ModelCard | None
    calibration: dict
    ops: dict[str, int]

    @property
    def quantized_convs(self) -> int:
        return self.calibration["quantized_convs"]


def quantize_int8(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    calib: str | os.PathLike[str],
    *,
    count: int = DEFAULT_CALIB_COUNT,
    method: Method | str = Method.minmax,
    per_channel: bool = True,
    activations: Activations | str = Activations.uint8,
    exclude: Sequence[str] = (),
    card: ModelCard | None = None,
    transformer_float: bool = True,
    calibration_cache: str | os.PathLike[str] | None = None,
    reduce_range: bool | None = None,
) -> Int8Result:
    """Quantize the ONNX file `source` to `target`, calibrated on `count` images of the folder `calib`.

    `exclude`: node names kept in float (see `exporters.qdq_debug` for the nodes that lose most).
    `card`: the normalisation etc. for a model without a segedge card. `transformer_float`: a graph
    with attention keeps `exporters.int8_float.transformer_float_nodes` in float (False: int8 wherever
    ONNX Runtime can). `calibration_cache`: a file where ORT keeps the activation ranges of `method`
    (written by the first call, read by the next): variants of one model share one calibration pass.
    `reduce_range`: 7-bit weights; None: where ORT's uint8 x int8 kernels would saturate on this CPU
    (`runtimes.measure.machine.int8_dot_saturates`).
    """
    method, activations = Method(method), Activations(activations)
    if reduce_range is None:
        reduce_range = activations is Activations.uint8 and int8_dot_saturates()
    model = load_model(source)
    card = card or read_card_from_proto(model)
    if card is None:
        raise CardError(f"{source} has no segedge model card, so its input normalisation is unknown; export it with segedge")
    images = calibration_images(Path(calib), count)
    with work_folder("segedge-int8-") as workdir:
        prepared = Path(workdir) / "prepared.onnx"
        quantized = Path(workdir) / "int8.onnx"
        preprocess(Path(source), prepared)
        prepared_model = onnx.load(os.fspath(prepared))
        check_node_names(prepared_model, exclude)
        kept = transformer_float_nodes(prepared_model) if transformer_float else []
        reader = ImageFolderReader(images, card, model.graph.input[0].name, tensor_type(model.graph.input[0].type))
        try:
            with _quiet():
                quantize_static(
                    prepared, quantized, reader,
                    quant_format=QuantFormat.QDQ,
                    per_channel=per_channel,
                    weight_type=QuantType.QInt8,
                    activation_type=_ORT_ACTIVATIONS[activations],
                    calibrate_method=_ORT_METHODS[method],
                    nodes_to_exclude=list(dict.fromkeys([*exclude, *kept])),
                    calibration_cache_path=calibration_cache,
                    reduce_range=reduce_range,
                )
        except (RuntimeError, ValueError, onnx.onnx_cpp2py_export.checker.ValidationError) as exc:
            raise ExportError(f"int8 quantization failed: {runtime_reason(exc)}") from exc
        result = onnx.load(os.fspath(quantized))
    ops = dict(Counter(n.op_type for n in result.graph.node))
    facts = {
        "images": len(images),
        "folder": str(calib),
        "method": method.value,
        "per_channel": per_channel,
        "weights": "int8",
        "reduce_range": reduce_range,  # 7-bit weights: this CPU's uint8 x int8 kernels would saturate
        "activations": activations.value,
        "format": "QDQ",
        "excluded_nodes": list(exclude),
        "transformer_float": bool(kept),  # the graph has attention: LayerNorm, Softmax, GELU, attention MatMuls in float
        "quantized_convs": quantized_convs(result),
        "convs": ops.get("Conv", 0) + ops.get("ConvTranspose", 0),
        "int8_ops": int8_compute(result),
        "float_ops": float_compute(result),
        "preprocess": "runtimes.imaging.preprocess.to_model_input",
        "onnxruntime": onnxruntime.__version__,
    }
    card = card.with_overrides(precision="int8", calibration=facts, parity={}, runtime="onnxruntime")
    drop_unused_opsets(result)
    save_model(embed_card(result, card), target)
    return Int8Result(Path(target), card, facts, ops)


def preprocess(source: Path, output: Path) -> None:
    """ORT's quantization pre-processing of the file `source` into `output` (in a temp folder).

    A path, not a ModelProto: given a proto, the pre-processor moves its weights to external data
    and then cannot read them back.
    """
    try:
        with _quiet():
            quant_pre_process(os.fspath(source), os.fspath(output), skip_symbolic_shape=True)
    except Exception as exc:  # ORT's optimiser and onnx's shape inference raise many types
        raise ExportError(f"quantization pre-processing failed: {runtime_reason(exc)}") from exc


def quantized_convs(model: onnx.ModelProto) -> int:
    """Conv / ConvTranspose nodes whose weight comes out of a DequantizeLinear (run in int8)."""
    dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return sum(
        1 for n in model.graph.node
        if n.op_type in ("Conv", "ConvTranspose") and len(n.input) > 1 and n.input[1] in dequantized
    )


def drop_unused_opsets(model: onnx.ModelProto) -> None:
    """Keep the opset imports the nodes use: the pre-processor's optimiser declares every domain
    ONNX Runtime knows (training, preview, aten...), which other runtimes and readers then see."""
    used = {n.domain or "" for n in model.graph.node} | {""}
    kept = [imp for imp in model.opset_import if (imp.domain or "") in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def check_node_names(model: onnx.ModelProto, names: Sequence[str]) -> None:
    known = {n.name for n in model.graph.node}
    missing = [name for name in names if name not in known]
    if missing:
        import difflib

        close = difflib.get_close_matches(missing[0], sorted(known), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"--exclude: no node named {', '.join(missing)} in the model{hint}; `--debug` lists node names")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ORT's quantization tools print progress to stdout, where `--json` output goes, and log warnings
    to the root logger (one per LayerNorm weight it cannot quantize per channel)."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


