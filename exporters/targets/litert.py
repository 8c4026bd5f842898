"""The LiteRT target's writer: a PyTorch model to a static .tflite with litert-torch, LiteRT's own converter.

    [NHWC I/O: litert_torch.to_channel_last_io]
      -> litert_torch.convert(model, (x,)) -> flatbuffer bytes
      [int8: ai-edge-quantizer, LiteRT's own quantizer, recipe static_wi8_ai8, calibrated on the images]
      -> the card and record added to its metadata (runtimes.backends.litert_metadata)
      -> the delegate check: the file loaded by ai-edge-litert's interpreter with XNNPACK, which nodes
         the delegate replaced and how many partitions it made

Static shapes only: litert-torch bakes the resize targets of a model converted with dynamic shapes
into the graph, and such a file fails inside XNNPACK at any other size.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from runtimes.errors import ExportError, UsageError
from runtimes.backends.litert_metadata import CARD_KEY, TARGET_KEY, with_entries
from runtimes.backends.native_log import native_stderr_captured

from .quiet import quiet
from .result import CheckReport, UnsupportedNode

CHECK = "litert_xnnpack"
RUNTIME = "LiteRT, XNNPACK delegate"
EXPORT_INSTALL = "pip install 'segedge[litert-export]'"
_REPLACED = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate .*?yielding (\d+) partitions")


def require_litert_torch() -> None:
    """Import litert-torch now, its import-time chatter (absl, torchao, jax) kept off the terminal."""
    try:
        with quiet(), native_stderr_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import litert_torch  # noqa: F401
    except ImportError:
        raise UsageError(f"target litert needs litert-torch (LiteRT's PyTorch converter): {EXPORT_INSTALL}") from None


def float_flatbuffer(model: nn.Module, size: tuple[int, int], *, nhwc: bool) -> bytes:
    """The .tflite flatbuffer of `model` at 1 x 3 x H x W (`nhwc`: 1 x H x W x 3 in, N x H x W x C out), fp32:
    `static_int8(content, calibrated(content, images, nhwc=...), kept)` makes its int8 file."""
    import litert_torch

    example = (torch.zeros(1, 3, *size),)
    with quiet(), native_stderr_captured():
        try:
            if nhwc:
                model = litert_torch.to_channel_last_io(model, args=[0], outputs=[0])
                model.training = False
                example = (torch.zeros(1, *size, 3),)
            return bytes(litert_torch.convert(model, example).model_content())
        except Exception as exc:  # noqa: BLE001  (the converter raises many types, with MLIR dumps)
            raise ExportError(f"litert-torch could not convert the model: {_first_line(exc)}") from None


def calibrated(content: bytes, calibration: Iterable[np.ndarray], *, nhwc: bool) -> dict[str, Any]:
    """The activation ranges ai-edge-quantizer's static recipe measures on `calibration` for the float file
    `content`: one pass, reused by every `static_int8` of the same file (whatever it keeps in float)."""
    signature = "serving_default"  # the one signature litert-torch writes, its input args_0
    feeds = [{"args_0": np.ascontiguousarray((x.transpose(1, 2, 0) if nhwc else x)[None])} for x in calibration]
    with quiet(), native_stderr_captured():
        try:
            return dict(_quantizer(content, ()).calibrate({signature: feeds}))
        except Exception as exc:  # noqa: BLE001  (the quantizer raises many types)
            raise ExportError(f"ai-edge-quantizer could not calibrate the model: {_first_line(exc)}") from None


def static_int8(content: bytes, ranges: dict[str, Any], kept: Sequence[str] = ()) -> bytes:
    """LiteRT's own quantizer on the float file `content`: ai-edge-quantizer's static_wi8_ai8 recipe (int8 weights
    and activations where LiteRT has int8 kernels; int8 input and output tensors too) with the activation `ranges`
    of `calibrated`; the ops whose scope (`op_scopes`) is in `kept` stay float (the recipe's no_quantize), and so
    do those with a weight the quantizer cannot take (`large_weight_scopes`).

    Not litert-torch's PT2E path: its annotator stops on common graphs (a U-Net's ReLU before a concat:
    "... only refer to edge or node that has observer/fake_quant inserted")."""
    with quiet(), native_stderr_captured():
        try:
            float_ops = [*large_weight_scopes(content), *kept]  # calibration needs neither: only here
            result = _quantizer(content, float_ops).quantize(ranges, enable_progress_report=False)
        except Exception as exc:  # noqa: BLE001  (the quantizer raises many types)
            raise ExportError(f"ai-edge-quantizer could not quantize the model: {_first_line(exc)}") from None
    return bytes(result.quantized_model)


def _quantizer(content: bytes, kept: Sequence[str]) -> Any:
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe

    engine = quantizer.Quantizer(bytearray(content), recipe.static_wi8_ai8())
    for scope in dict.fromkeys(kept):  # the latest matching entry wins: these override the recipe's ".*"
        engine.update_quantization_recipe(f"^{re.escape(scope)}$", qtyping.TFLOperationName.ALL_SUPPORTED,
                                          qtyping.OpQuantizationConfig(),
                                          algorithm_manager.AlgorithmName.NO_QUANTIZE)
    return engine


# ai-edge-quantizer quantizes a weight larger than this in chunks, and its chunked path cannot take
# the rank-4 scales of a conv's weight, per-channel or per-tensor (0.10: google-ai-edge/ai-edge-quantizer#512,
# "input operand has more dimensions than allowed by the axis remapping"): FCN's fc6 (7 x 7 x 512 x 4096)
# and PSPNet's bottleneck conv (3 x 3 x 4096 x 512) stopped the whole file. Such an op stays float.
CHUNKED_WEIGHT_BYTES = 32 * 1024 * 1024


def large_weight_scopes(content: bytes) -> list[str]:
    """The scopes of the ops of a .tflite that read a constant over `CHUNKED_WEIGHT_BYTES`: `static_int8` keeps
    them float."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(bytearray(content))
    graph = model.subgraphs[0]
    return [tfl.get_op_scope(op, graph.tensors) for op in graph.operators
            if any(_constant_bytes(graph.tensors[t], model.buffers) > CHUNKED_WEIGHT_BYTES for t in op.inputs if t != -1)]


def _constant_bytes(tensor: Any, buffers: Any) -> int:
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    data = tfl.get_tensor_data(tensor, buffers)
    return 0 if data is None else int(data.nbytes)


@dataclass(frozen=True)
class OpGraph:
    """The ops of a .tflite's main graph, each named by its scope (its output tensors' names, as
    ai-edge-quantizer's recipes match them), in graph order."""

    scopes: tuple[str, ...]
    kinds: tuple[str, ...]  # each op's builtin name: CONV_2D, ADD ...
    following: dict[str, list[str]]  # scope -> the scopes of the ops reading its outputs
    locations: dict[str, str]  # scope -> the module path litert-torch recorded for the op ("" where none)


def op_graph(content: bytes) -> OpGraph:
    from ai_edge_quantizer import qtyping
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    builtin = {code: name for name, code in vars(qtyping.BuiltinOperator).items() if name.isupper()}
    model = tfl.read_model(bytearray(content))
    graph = model.subgraphs[0]
    scopes: list[str] = []
    kinds: list[str] = []
    readers: dict[int, list[int]] = {}  # tensor -> the ops reading it
    for op in graph.operators:
        scopes.append(tfl.get_op_scope(op, graph.tensors))
        kinds.append(builtin.get(model.operatorCodes[op.opcodeIndex].builtinCode, "CUSTOM"))
        for t in op.inputs:
            if t != -1:
                readers.setdefault(int(t), []).append(len(scopes) - 1)
    following = {scopes[i]: [scopes[r] for t in op.outputs for r in readers.get(int(t), [])]
                 for i, op in enumerate(graph.operators)}
    return OpGraph(tuple(scopes), tuple(kinds), following, {s: _location(s) for s in scopes})


def _location(scope: str) -> str:
    """The op's own module path in litert-torch's tensor names: ";"-separated locations, the ops fused into it
    first and its own last, each a path of `<module class>_<attribute>` steps under the model's class
    (`pkg.Net/torch.nn.modules.conv.Conv2d_conv2;1;` -> `torch.nn.modules.conv.Conv2d_conv2`)."""
    paths = [part.split("/", 1)[1] for part in scope.split(";") if "/" in part]
    return paths[-1] if paths else ""


def module_paths(model: nn.Module) -> dict[str, str]:
    """Each module of `model` by the path litert-torch writes for it (see `_location`) -> its name in the model
    (`encoder.0.0`). Module lists and dicts are indexed, never called, so their level is not in the path."""
    found: dict[str, str] = {}

    def walk(module: nn.Module, name: str, path: str) -> None:
        for attribute, child in module.named_children():
            full = f"{name}.{attribute}" if name else attribute
            if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
                walk(child, full, path)
                continue
            step = f"{type(child).__module__}.{type(child).__qualname__}_{attribute}"
            below = f"{path}/{step}" if path else step
            found.setdefault(below, full)
            walk(child, full, below)

    walk(model, "", "")
    return found


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def with_card(content: bytes, card_json: str, record: Mapping[str, Any]) -> bytes:
    return with_entries(content, {CARD_KEY: card_json.encode(), TARGET_KEY: json.dumps(dict(record)).encode()})


def delegate_check(content: bytes) -> CheckReport:
    """The file on ai-edge-litert's interpreter with XNNPACK: the nodes the delegate left to LiteRT's
    built-in kernels, and its partition count (each boundary is a copy between the two)."""
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_captured() as said:
        interpreter = Interpreter(model_content=content, num_threads=1)
        interpreter.allocate_tensors()
        log = said()
    ops = interpreter._get_ops_details()  # noqa: SLF001  (the one listing of nodes LiteRT's Python API has)
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    nodes = [op for op in ops if op["op_name"] != "DELEGATE"]
    outside = _outside_delegates(nodes, delegates, _graph_outputs(interpreter))
    match = _REPLACED.search(log)
    rows = tuple(UnsupportedNode(op_type=op["op_name"], node=f"node {op['index']}", check=CHECK,
                                 reason="not taken by the XNNPACK delegate; runs on LiteRT's built-in kernels")
                 for op in outside)
    return CheckReport(check=CHECK, runtime=RUNTIME, source="ai-edge-litert's interpreter with its XNNPACK delegate",
                       ran=True, nodes=len(nodes), supported=len(nodes) - len(outside), unsupported=rows,
                       partitions=int(match.group(3)) if match else len(delegates),
                       fallback="LiteRT's built-in CPU kernels")


def _graph_outputs(interpreter: Any) -> set[int]:
    return {int(d["index"]) for d in interpreter.get_output_details()}


def _outside_delegates(nodes: list[dict[str, Any]], delegates: list[dict[str, Any]],
                       graph_outputs: set[int]) -> list[dict[str, Any]]:
    """The nodes no delegate replaced, from the tensors that cross partition boundaries.

    A node's output that a delegate produces is inside that delegate. One that a delegate consumes,
    or the graph returns, without a delegate producing it, comes from a node outside. An output
    that only other nodes consume is inside exactly when its consumers are (a partition's inner
    tensors never leave it), so nodes are decided from the last to the first.
    """
    produced = {int(t) for d in delegates for t in d["outputs"]}
    consumed = {int(t) for d in delegates for t in d["inputs"]}
    consumers: dict[int, list[int]] = {}
    for op in nodes:
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(int(op["index"]))
    outside: dict[int, bool] = {}
    for op in sorted(nodes, key=lambda o: -int(o["index"])):
        verdict = False
        for t in map(int, op["outputs"]):
            if t in produced:
                continue
            if t in consumed or t in graph_outputs or any(outside.get(c, False) for c in consumers.get(t, ())):
                verdict = True
        outside[int(op["index"])] = verdict
    return [op for op in nodes if outside[int(op["index"])]]
