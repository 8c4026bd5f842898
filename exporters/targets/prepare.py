"""The graph a target gets before its writer runs: static shape, opset within bounds, folded shapes.

Static shape: ONNX Runtime's own `make_input_shape_fixed` sets the image input to 1 x 3 x H x W
(replacing the symbolic N, H, W wherever the graph uses them) and `fix_output_shapes` re-infers
the outputs; onnxsim then folds the shape arithmetic the exporter emitted (Shape -> Gather ->
Concat feeding Resize) into constants, which NPU compilers need and which ORT's partitioner
would otherwise count as dynamic. Opset: `onnx.version_converter` moves the ai.onnx opset into
the target's bounds. Every step works on a copy; the caller's model is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import version_converter
from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

from runtimes.backends.messages import runtime_reason
from runtimes.errors import ExportError, UsageError

from ..simplify import simplify

from .quiet import quiet
from .table import Target


@dataclass(frozen=True)
class Prepared:
    model: onnx.ModelProto
    input_shape: tuple[int, ...] | None  # None: dynamic
    opset: int
    notes: tuple[str, ...]


def prepare(model: onnx.ModelProto, target: Target, input_size: tuple[int, int] | None) -> Prepared:
    model = _copy(model)
    notes: list[str] = []
    shape = None
    if target.static_shape:
        if input_size is None:
            raise UsageError(f"target {target.name} needs a static input size: give input_size (--input-size HxW)")
        shape = (1, 3, *input_size)
        fix_shape(model, shape)
        simplified = simplify(model, (1, 3, input_size[0], input_size[1]))
        if simplified.simplified:
            model = simplified.model
        notes.append(f"static input shape {'x'.join(map(str, shape))}; {simplified.message}")
    model, opset_note = bound_opset(model, target)
    if opset_note:
        notes.append(opset_note)
    return Prepared(model, shape, onnx_opset(model), tuple(notes))


def fix_shape(model: onnx.ModelProto, shape: tuple[int, ...]) -> None:
    """Set the image input of `model` to `shape`, in place, and re-infer its outputs."""
    if len(model.graph.input) != 1:
        raise UsageError(f"a segmentation model takes one image input; this one takes {len(model.graph.input)}")
    try:
        make_input_shape_fixed(model.graph, model.graph.input[0].name, list(shape))
        fix_output_shapes(model)
    except ValueError as exc:  # rank mismatch, or a fixed size that differs from the one asked for
        raise UsageError(f"cannot give the model input the shape {list(shape)}: {runtime_reason(exc)}") from None
    except Exception as exc:  # onnx shape inference rejects some foreign graphs
        raise ExportError(f"shape inference failed after fixing the input shape: {runtime_reason(exc)}") from exc


def bound_opset(model: onnx.ModelProto, target: Target) -> tuple[onnx.ModelProto, str]:
    """`model` with its ai.onnx opset moved into the target's bounds, and a note saying why ("" if unchanged)."""
    current = onnx_opset(model)
    wanted = current
    if target.max_opset is not None and current > target.max_opset:
        wanted = target.max_opset
    if target.min_opset is not None and current < target.min_opset:
        wanted = target.min_opset
    if wanted == current:
        return model, ""
    try:
        with quiet():
            converted = version_converter.convert_version(model, wanted)
    except Exception as exc:  # the converter raises RuntimeError / onnx errors for ops it cannot move
        raise ExportError(f"cannot convert opset {current} to {wanted} for target {target.name}: "
                          f"{runtime_reason(exc)} ({target.opset_reason})") from exc
    return converted, f"opset {current} -> {wanted}: {target.opset_reason}"


def onnx_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    raise UsageError("the model imports no ai.onnx opset")


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
