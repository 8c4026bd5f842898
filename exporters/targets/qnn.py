"""QDQ for ONNX Runtime's QNN execution provider (HTP): ORT's QNN preprocessing and QNN quantization config.

Steps, all ORT's, all running on x64 without the device: `qnn_preprocess_model` (its fusions:
Gelu, LpNormalization, SpaceToDepth), `get_qnn_qdq_config(activation_type=QUInt16,
weight_type=QUInt8)` (the overrides that make the QDQ graph acceptable to QNN) and `quantize`.
The input is already static and at opset 21 (the target's bounds), so Q/DQ come out in the
ai.onnx domain with 16-bit types, which ONNX Runtime's CPU provider runs too: the artefact is
verified here on ORT's CPU QDQ kernels (measured, ORT 1.32). Calibration images are prepared by
the Predictor's own code at the model's static size (`images.StaticSizeReader`).

uint8 weights are ORT's documented choice, but ORT's quantizer widens a weight's scale to keep
the int32 bias (scale = input scale x weight scale) in range only for signed symmetric weights.
With 16-bit activations the input scale is 256 times finer than with 8-bit ones, so a layer fed by
a narrow activation range clips its bias: measured on the zoo's lraspp_mobilenet_v3_large
(random weights, 256 x 256, calibrated on 16 generated images, verified on 8 of them), uint8
weights agreed with fp32 on 11.6% of pixels (SQNR 4.8 dB): the high-resolution classifier's input
is a near-zero branch (its range floored at the config's MinimumRealRange 1e-4, scale 1.5e-9),
so its bias scale was 1.1e-12 and every bias saturated int32; int8 weights agreed on 99.63%
(SQNR 59.8 dB, weakest class IoU 0.969). deeplabv3plus_mobilenetv2 kept 100% with uint8 weights.
`weights="int8"` selects signed symmetric weights; the verification says which holds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
import onnxruntime
from onnxruntime.quantization import CalibrationMethod, QuantType, quantize_static
from onnxruntime.quantization.execution_providers.qnn import (
    get_qnn_qdq_config,
    qnn_preprocess_model,
)

from runtimes.backends.messages import runtime_reason
from runtimes.model.card import ModelCard
from runtimes.errors import ExportError

from .images import StaticSizeReader

from .quiet import quiet

_TYPES = {"uint16": QuantType.QUInt16, "uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
_METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}


def quantize_for_qnn(source: Path, target: Path, images: Sequence[Path], card: ModelCard, *,
                     size: tuple[int, int], activations: str, weights: str, workdir: Path, method: str = "minmax",
                     wide_weights: Sequence[str] = (), calibration_cache: Path | None = None) -> dict[str, Any]:
    """Write the QDQ model of the static fp32 file `source` to `target`; returns the calibration facts.

    `method`: how activation ranges are calibrated (minmax, percentile, entropy). `wide_weights`:
    nodes whose weights are quantized to signed symmetric 16 bits (ORT's TensorQuantOverrides), the
    higher precision QNN's HTP runs. `calibration_cache`: a file keeping `method`'s activation ranges
    between calls (ORT's calibration_cache_path), so variants share one calibration pass.
    """
    model = onnx.load(os.fspath(source))
    # onnxruntime 1.32's qnn_preprocess_model raises TypeError on any model with metadata_props
    # (save_and_reload_optimize_model does dict.update() on the repeated proto field); the card is
    # put back on the result by the caller.
    del model.metadata_props[:]
    plain = workdir / "qnn-input.onnx"
    onnx.save(model, os.fspath(plain))
    preprocessed = workdir / "qnn-preprocessed.onnx"
    reader = StaticSizeReader(images, card, model.graph.input[0].name, size)
    try:
        with quiet():
            changed = qnn_preprocess_model(plain, preprocessed)
            start = preprocessed if changed else plain
            config = get_qnn_qdq_config(start, reader, calibrate_method=_METHODS[method],
                                        activation_type=_TYPES[activations], weight_type=_TYPES[weights],
                                        init_overrides=_sixteen_bit(start, wide_weights))
            quantize_static(start, target, config.calibration_data_reader, calibrate_method=config.calibrate_method,
                            quant_format=config.quant_format, activation_type=config.activation_type,
                            weight_type=config.weight_type, op_types_to_quantize=config.op_types_to_quantize,
                            nodes_to_exclude=config.nodes_to_exclude, per_channel=config.per_channel,
                            use_external_data_format=config.use_external_data_format,
                            extra_options=config.extra_options, calibration_cache_path=calibration_cache)
    except (RuntimeError, ValueError, TypeError, onnx.onnx_cpp2py_export.checker.ValidationError) as exc:
        raise ExportError(f"QNN quantization failed: {runtime_reason(exc)}") from exc
    return {
        "images": len(images),
        "method": method,
        "per_channel": False,
        "weights": weights,
        "sixteen_bit_weights": list(wide_weights),  # nodes whose weights are int16 (the repair's higher precision)
        # get_qnn_qdq_config's default: weights symmetric exactly when signed
        "weights_symmetric": weights == "int8",
        "activations": activations,
        "format": "QDQ",
        "config": "onnxruntime.quantization.execution_providers.qnn.get_qnn_qdq_config",
        "qnn_preprocess_changed_graph": bool(changed),
        "preprocess": "runtimes.imaging.preprocess.to_model_input at the static size",
        "onnxruntime": onnxruntime.__version__,
    }


def weight_names(model_path: Path, nodes: Sequence[str]) -> list[str]:
    """The weight initializers of `nodes` (their second input) in the file `model_path`."""
    wanted = set(nodes)
    model = onnx.load(os.fspath(model_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [n.input[1] for n in model.graph.node if n.name in wanted and len(n.input) > 1 and n.input[1] in initializers]


def _sixteen_bit(model_path: Path, nodes: Sequence[str]) -> dict[str, list[dict[str, Any]]] | None:
    if not nodes:
        return None
    return {name: [{"quant_type": QuantType.QInt16, "symmetric": True}] for name in weight_names(model_path, nodes)}
