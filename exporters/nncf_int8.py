"""fp32 -> int8 for OpenVINO: NNCF's post-training quantization (`nncf.quantize`), written as an OpenVINO IR.

The best int8 file depends on the runtime that runs it: ONNX Runtime's QDQ file is what ONNX
Runtime runs fastest, NNCF's model what OpenVINO does. IR or NNCF's QDQ ONNX? Measured on DeepLab v3+
R50 at 512 x 512 (random weights, 16 calibration images, 2 threads, one interleaved run on a 2-core
AMD EPYC without AMX, heavily loaded by other jobs, so only the ratios mean much): NNCF's IR 1528 ms
p50 on OpenVINO, NNCF's QDQ ONNX of the same model 1679 ms on OpenVINO (1.10x slower) and 3056 ms on
ONNX Runtime; `quantize --for openvino` therefore writes the IR. Calibration is the very data ONNX Runtime's
quantizer gets: `exporters.calibration` images prepared by the Predictor's own preprocessing
(`runtimes.imaging.preprocess.to_model_input`), fed to `nncf.Dataset` one image at a time.

The IR carries the card in its `rt_info` (`segedge` -> `card`, as `exporters.targets.openvino_ir`
writes it) with `runtime: "openvino"`; the .bin and .xml appear atomically, the .bin first (an
.xml names its .bin's byte offsets), or not at all. Where int8 loses more than a budget, segedge's
repair search (`segedge.quantize.repair` with the NNCF adapter) chooses the layers kept in float, by
mIoU on the runtime, in place of `nncf.quantize_with_accuracy_control`.

A graph with attention (a MatMul of two activations) is quantized as NNCF's
`ModelType.TRANSFORMER`, which keeps LayerNorm (MVN), Softmax and GELU in float and smooths the
MatMuls' activation outliers into their weights (SmoothQuant); the card counts what ran in int8
and what stayed float (`int8_ops`, `float_ops`).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.metadata
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.model.card import ModelCard
from runtimes.errors import ExportError, UsageError
from runtimes.guards.fileio import work_folder
from runtimes.backends.openvino_session import IR_CARD, import_openvino, read_openvino_card

from .calibration import ImageFolderReader, calibration_images
from .int8_options import DEFAULT_CALIB_COUNT
from .targets.quiet import quiet

PRESETS = ("performance", "mixed")  # NNCF's: symmetric activations (fastest on CPUs), or asymmetric ones
# Operations NNCF leaves in float. Measured on the trained demo U-Net (segedge.train.recipe.SMALL, 100 held-out
# images; ORT's QDQ int8 lost 0.07 mIoU points): NNCF's defaults lost 3.1 points (min class IoU 0.81); min/max
# activation ranges 1.84 (0.86); min/max and Concat in float 0.06 (0.92); Concat in float alone 2.70.
FLOAT_TYPES = ("Concat",)


@dataclass(frozen=True)
class NNCFResult:
    path: Path  # the IR's .xml (its .bin beside it)
    card: ModelCard
    calibration: dict[str, Any]
    ops: dict[str, int]


class _Feeds:
    """The calibration images as NNCF iterates them (more than once: statistics, then bias correction)."""

    def __init__(self, reader: ImageFolderReader) -> None:
        self.reader = reader

    def __iter__(self) -> Iterator[np.ndarray]:
        self.reader.rewind()
        while (feed := self.reader.get_next()) is not None:
            yield next(iter(feed.values()))  # in the model's layout and element type

    def __len__(self) -> int:
        return len(self.reader)


def quantize_nncf(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    calib: str | os.PathLike[str],
    *,
    card: ModelCard,
    count: int = DEFAULT_CALIB_COUNT,
    exclude: Sequence[str] = (),
    preset: str = "performance",
    transformer: bool | None = None,
) -> NNCFResult:
    """Quantize the ONNX (or IR) file `source` with NNCF into the IR `target` (.xml), calibrated on `calib`.

    `card`: the fp32 file's (its normalisation prepares the images). `exclude`: node names kept in
    float (NNCF's ignored scope): segedge's repair search (`segedge.quantize.adapters.openvino_nncf`)
    chooses them by mIoU where int8 misses its budget. `transformer`: quantize as NNCF's TRANSFORMER model
    type (None: when the graph has attention).
    """
    target = Path(target)
    if target.suffix.lower() != ".xml":
        raise UsageError(f"NNCF's int8 model for OpenVINO is an IR: name the output .xml, not {target.name}")
    if preset not in PRESETS:
        raise UsageError(f"NNCF preset must be {' or '.join(PRESETS)}, got {preset!r}")
    ov = import_openvino()
    nncf = _import_nncf()
    images = calibration_images(Path(calib), count)
    model = _read(ov, source)
    _check_names(model, exclude)
    input_type = _input_type(model)
    feeds = _Feeds(ImageFolderReader(images, card, model.inputs[0].get_any_name(), input_type))
    dataset = nncf.Dataset(feeds)
    transformer = has_attention(model) if transformer is None else transformer
    options: dict[str, Any] = {
        "preset": nncf.QuantizationPreset(preset), "subset_size": len(images),
        **({"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}),
        # Concat stays float: NNCF gives every input of a Concat one scale, and a U-Net's skip features and
        # its upsampled decoder features differ in range (names: checked above, so validate=False for types).
        "ignored_scope": nncf.IgnoredScope(names=list(exclude), types=list(FLOAT_TYPES), validate=False),
    }
    # Activation ranges: the min and max over all calibration images, as ONNX Runtime's MinMax
    # calibration takes them; NNCF's default (the mean over images of each image's min and max) clips.
    advanced = _advanced(nncf)
    try:
        with _quiet_nncf():
            quantized = nncf.quantize(model, dataset, advanced_parameters=advanced, **options)
    except Exception as exc:  # noqa: BLE001 - NNCF and OpenVINO raise many types: one line, the cause chained
        raise ExportError(f"NNCF quantization failed: {_last_line(exc)}") from exc
    ops = dict(Counter(op.get_type_name() for op in quantized.get_ordered_ops()))
    facts = {
        "images": len(images),
        "folder": str(calib),
        "quantizer": "nncf",
        "method": "nncf",
        "preset": preset,
        "per_channel": True,  # NNCF quantizes weights per output channel
        "weights": "int8",
        "activations": "int8" if preset == "performance" else "uint8/int8",
        "format": "OpenVINO IR",
        "excluded_nodes": list(exclude),
        "float_types": list(FLOAT_TYPES),
        "model_type": "transformer" if transformer else "default",
        "activation_ranges": "min/max over the images",
        "quantized_convs": quantized_convs(quantized),
        "convs": ops.get("Convolution", 0) + ops.get("GroupConvolution", 0) + ops.get("ConvolutionBackpropData", 0),
        "int8_ops": compute_ops(quantized, int8=True),
        "float_ops": compute_ops(quantized, int8=False),
        "preprocess": "runtimes.imaging.preprocess.to_model_input",
        "nncf": _version("nncf"),
        "openvino": _version("openvino"),
    }
    final = card.with_overrides(precision="int8", calibration=facts, parity={}, runtime="openvino")
    save_ir(quantized, final, target)
    return NNCFResult(target, final, facts, ops)


def _advanced(nncf: Any) -> Any:
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)


def save_ir(model: Any, card: ModelCard, xml: Path) -> Path:
    """`model` with `card` in its rt_info, saved as `xml` + `.bin`: both appear, or neither changes."""
    ov = import_openvino()
    from .targets.build import _move_into_place  # the targets' atomic IR placement: .bin first, the .xml last

    model.set_rt_info(card.to_json(), list(IR_CARD))
    with work_folder("segedge-nncf-") as workdir:
        staged = Path(workdir) / "model.xml"
        ov.save_model(model, os.fspath(staged), compress_to_fp16=False)
        _move_into_place([(staged.with_suffix(".bin"), xml.with_suffix(".bin")), (staged, xml)])
    return xml


def ir_card(xml: str | os.PathLike[str]) -> ModelCard | None:
    return read_openvino_card(import_openvino().Core().read_model(os.fspath(xml)))


def with_card(xml: str | os.PathLike[str], card: ModelCard, target: str | os.PathLike[str]) -> Path:
    """The IR `xml` written again at `target` with `card` (the measured parity added to it)."""
    return save_ir(import_openvino().Core().read_model(os.fspath(xml)), card, Path(target))


# Operations a quantized value passes through unchanged in int8 (NNCF puts the FakeQuantize before them).
_AGNOSTIC = ("MaxPool", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "StridedSlice", "Slice", "Split",
             "VariadicSplit", "Pad", "DepthToSpace", "SpaceToDepth")


_CONVS = ("Convolution", "GroupConvolution", "ConvolutionBackpropData")
# OpenVINO's compute ops whose precision decides speed and accuracy (LayerNorm is MVN there).
_COMPUTE = (*_CONVS, "MatMul", "MVN", "Softmax", "Gelu", "Erf")


def _from_fake_quantize(node: Any) -> bool:
    """Whether a value comes out of a FakeQuantize, directly or through ops that keep it in int8."""
    while node.get_type_name() in _AGNOSTIC and node.get_input_size() > 0:
        node = node.input_value(0).get_node()
    return bool(node.get_type_name() == "FakeQuantize")


def _constant(node: Any, memo: dict[str, bool]) -> bool:
    """Whether a value depends on no input of the model (a weight, however it is decompressed)."""
    name = node.get_name()  # unique within the model
    if name not in memo:
        kind = node.get_type_name()
        memo[name] = kind == "Constant" or (kind != "Parameter" and node.get_input_size() > 0 and all(
            _constant(node.input_value(i).get_node(), memo) for i in range(node.get_input_size())))
    return memo[name]


def _activation_inputs(op: Any, memo: dict[str, bool]) -> list[Any]:
    inputs = [op.input_value(i).get_node() for i in range(min(op.get_input_size(), 2))]
    return [node for node in inputs if not _constant(node, memo)]


def has_attention(model: Any) -> bool:
    """A MatMul of two activations (attention's Q K^T, softmax(.) V) is in the model."""
    memo: dict[str, bool] = {}
    return any(op.get_type_name() == "MatMul" and len(_activation_inputs(op, memo)) == 2 for op in model.get_ordered_ops())


def compute_ops(model: Any, int8: bool) -> dict[str, int]:
    """Compute ops whose activation inputs all come out of a FakeQuantize (`int8`) or not, per type."""
    memo: dict[str, bool] = {}
    counts: Counter[str] = Counter()
    for op in model.get_ordered_ops():
        if op.get_type_name() in _COMPUTE:
            activations = _activation_inputs(op, memo)
            if bool(activations) and all(_from_fake_quantize(node) for node in activations) == int8:
                counts[op.get_type_name()] += 1
    return dict(sorted(counts.items()))


def quantized_convs(model: Any) -> int:
    """Convolutions whose activation input comes out of a FakeQuantize, directly or through operations
    that keep a value in int8 (MaxPool, Reshape...): OpenVINO runs them in int8."""
    return sum(1 for op in model.get_ordered_ops()
               if op.get_type_name() in _CONVS and _from_fake_quantize(op.input_value(0).get_node()))


def _read(ov: Any, source: str | os.PathLike[str]) -> Any:
    try:
        model = ov.Core().read_model(os.fspath(source))
    except Exception as exc:  # OpenVINO's frontends raise their own types
        raise ExportError(f"OpenVINO cannot read {source}: {_last_line(exc)}") from None
    return model  # the card comes from the caller: the file's own, or a foreign file's inspection and options


def _input_type(model: Any) -> str:
    kind = model.inputs[0].get_element_type().get_type_name()
    return {"f16": "tensor(float16)", "u8": "tensor(uint8)"}.get(kind, "tensor(float)")


def _check_names(model: Any, names: Sequence[str]) -> None:
    known = {op.get_friendly_name() for op in model.get_ordered_ops()}
    missing = [name for name in names if name not in known]
    if missing:
        close = difflib.get_close_matches(missing[0], sorted(known), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"--exclude: no node named {', '.join(missing)} in the model{hint}")


def _import_nncf() -> Any:
    try:
        import nncf
    except ImportError:
        raise ExportError("NNCF is not installed: pip install 'segedge[openvino]' (it brings nncf)") from None
    return nncf


@contextlib.contextmanager
def _quiet_nncf() -> Iterator[None]:
    """NNCF logs INFO lines and draws progress bars on stdout, where `--json` output goes."""
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with quiet(), contextlib.redirect_stderr(_Sink()):
            yield
    finally:
        logger.setLevel(level)


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _last_line(exc: BaseException) -> str:
    """NNCF's and OpenVINO's Python errors end with the reason (the lines before are context)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
