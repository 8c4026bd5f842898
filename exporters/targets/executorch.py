"""The ExecuTorch target's writer: a PyTorch model to a .pte program lowered to XNNPACK, with ExecuTorch's own tools.

    torch.export.export (static, or H/W dynamic within `side_range`)
      [int8: torchao's prepare_pt2e with ExecuTorch's XNNPACKQuantizer, calibrated, convert_pt2e, exported again]
      -> to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()], constant_methods=card, record)
      -> the delegate check (what stays outside XNNPACK, partitions) -> to_executorch() -> bytes

The card and the target record ride in the program as constant methods (`segedge_card`,
`segedge_target`: ExecuTorch's documented way to store configuration in a program), which
`runtimes.backends.executorch_session` reads back.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from runtimes.errors import ExportError, UsageError
from runtimes.backends.executorch_session import CARD_METHOD, INSTALL, TARGET_METHOD
from runtimes.backends.native_log import native_stderr_captured

from .quiet import quiet
from .result import CheckReport, UnsupportedNode

CHECK = "xnnpack_delegate"
RUNTIME = "ExecuTorch, XNNPACK delegate"
# Edge-dialect nodes that are plumbing, not computation: they never go to a delegate.
OBSERVERS = ("histogram", "minmax")  # XNNPACKQuantizer's activation observer (its default first), then min/max
_PLUMBING = ("executorch_call_delegate", "getitem", "sym_size", "sym_numel", "alloc", "view_copy", "_assert")


@dataclass(frozen=True)
class Lowered:
    program: bytes
    check: CheckReport


def require_executorch() -> None:
    """Import ExecuTorch's export side now, its import-time chatter (torchao, pytree) kept off the terminal."""
    try:
        with quiet(), native_stderr_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import executorch.exir  # noqa: F401
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner  # noqa: F401
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer  # noqa: F401
    except ImportError:
        raise UsageError(f"target executorch needs ExecuTorch: {INSTALL}") from None


def dynamic_shapes(size_divisor: int, side_range: tuple[int, int] | None) -> dict[str, Any] | None:
    """torch.export's dynamic H and W: multiples of the divisor within `side_range` (None: static)."""
    if side_range is None:
        return None
    step = max(size_divisor, 1)
    low, high = side_range
    if low % step or high % step or low > high or low < 2 * step:
        raise UsageError(f"the side range {low}..{high} must be multiples of the size divisor {step}, from twice it "
                         f"({2 * step}; torch.export fixes a side that may be one step), smallest first")
    h = torch.export.Dim("h", min=low // step, max=high // step)
    w = torch.export.Dim("w", min=low // step, max=high // step)
    return {"x": {2: step * h, 3: step * w}} if step > 1 else {"x": {2: h, 3: w}}


class _Image(nn.Module):
    """The model with its one input named `x`, as `dynamic_shapes` names it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.training = False  # not .eval(): a PT2E-converted graph refuses train()/eval(); the model is in eval already

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def exported(model: nn.Module, size: tuple[int, int], shapes: dict[str, Any] | None) -> Any:
    example = (torch.zeros(1, 3, *size),)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(_Image(model), example, dynamic_shapes=shapes)
    except Exception as exc:  # noqa: BLE001  (torch.export raises many types, each with a long message)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = " (try a static program: --static)" if shapes is not None else ""
        raise ExportError(f"torch.export could not capture the model for ExecuTorch: {first}{hint}") from None


def quantized(model: nn.Module, size: tuple[int, int], shapes: dict[str, Any] | None,
              calibration: Iterable[np.ndarray], *, observer: str = "histogram",
              kept: Collection[str] = ()) -> nn.Module:
    """PT2E int8 with ExecuTorch's XNNPACKQuantizer (symmetric, per-channel weights), calibrated on `calibration`.

    `observer`: how activation ranges are found, the quantizer's default `histogram` (HistogramObserver,
    which minimises the rounding error) or `minmax`. `kept`: nodes of the exported graph (`graph_nodes`
    names them) the quantizer leaves in float, through its filter function (its module-name config
    takes no None in this ExecuTorch), so XNNPACK runs them in fp32 (segedge.quantize.adapters.pt2e)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import ComposableQuantizer

    from .pt2e_pad import pad_quantizer

    config = get_symmetric_quantization_config(is_per_channel=True)
    if observer not in OBSERVERS:
        raise UsageError(f"unknown activation observer {observer!r}: one of {', '.join(OBSERVERS)}")
    if observer == "minmax":
        from torchao.quantization.pt2e import MinMaxObserver

        activation = dataclasses.replace(config.input_activation,
                                         observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
        config = dataclasses.replace(config, input_activation=activation, output_activation=activation)
    xnnpack = XNNPACKQuantizer().set_global(config)
    if kept:
        names = frozenset(kept)
        xnnpack.set_filter_function(lambda node: node.name not in names)
    quantizer = ComposableQuantizer([xnnpack, pad_quantizer()])  # pads of quantized tensors: one scale
    graph = exported(model, size, shapes).module()
    try:
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for x in calibration:
                prepared(torch.from_numpy(np.ascontiguousarray(x[None])))
        return convert_pt2e(prepared)
    except Exception as exc:  # noqa: BLE001  (PT2E raises many types: an op its annotation breaks, an observer)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"ExecuTorch's PT2E quantizer (XNNPACKQuantizer) could not quantize the model: {first}") \
            from None


def graph_nodes(model: nn.Module, size: tuple[int, int], shapes: dict[str, Any] | None) -> Any:
    """The graph PT2E annotates (the exported program's module): its node names are what `quantized` keeps."""
    return exported(model, size, shapes).module().graph


def lower(model: nn.Module, size: tuple[int, int], shapes: dict[str, Any] | None, card_json: str,
          record: dict[str, Any]) -> Lowered:
    """`model` (float or PT2E-converted) lowered to XNNPACK, the card and record inside, serialised."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = exported(model, size, shapes)
    try:
        with quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIR's FutureWarnings about torch's pytree, once per node
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                               constant_methods={CARD_METHOD: card_json,
                                                                 TARGET_METHOD: json.dumps(record)})
            check = delegate_check(edge.exported_program().graph_module)
            return Lowered(bytes(edge.to_executorch().buffer), check)
    except Exception as exc:  # noqa: BLE001  (EXIR raises many types)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"ExecuTorch could not lower the model: {first}") from None


def delegate_check(graph_module: Any) -> CheckReport:
    """What the XNNPACK partitioner left outside its delegate (ExecuTorch's portable kernels run it),
    and how many delegate partitions there are (each boundary is a copy between runtimes)."""
    delegated = 0
    for child in graph_module.children():
        original = getattr(child, "original_module", None)
        if original is not None:
            delegated += sum(1 for n in original.graph.nodes if n.op == "call_function")
    outside = [n for n in graph_module.graph.nodes if n.op == "call_function" and not _plumbing(n)]
    partitions = sum(1 for n in graph_module.graph.nodes if n.op == "call_function"
                     and "executorch_call_delegate" in str(n.target))
    rows = tuple(UnsupportedNode(op_type=_op_name(n), node=n.name, check=CHECK,
                                 reason="not taken by XNNPACK's partitioner (for its types, shapes or dynamic sizes)")
                 for n in outside)
    return CheckReport(check=CHECK, runtime=RUNTIME, source="the lowered program (XnnpackPartitioner's choice)",
                       ran=True, nodes=delegated + len(outside), supported=delegated, unsupported=rows,
                       partitions=partitions, fallback="ExecuTorch's portable CPU kernels")


def _plumbing(node: Any) -> bool:
    name = getattr(node.target, "__name__", str(node.target))
    return any(p in name or p in str(node.target) for p in _PLUMBING)


def _op_name(node: Any) -> str:
    text = str(node.target)
    # "<EdgeOpOverload: aten.upsample_bilinear2d.vec>: schema = ..." -> "aten.upsample_bilinear2d.vec"
    if text.startswith("<EdgeOpOverload: "):
        return text[len("<EdgeOpOverload: "):].split(">")[0]
    return text
