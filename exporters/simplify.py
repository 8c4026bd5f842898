"""Graph simplification with onnxsim, checked: a failed or unverified simplification is reported
and the unsimplified model kept (onnx-simplifier's own `model_checking` contract)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import onnx

from runtimes.guards.interrupts import check_interrupted
from runtimes.backends.messages import runtime_reason


@dataclass(frozen=True)
class SimplifyResult:
    model: onnx.ModelProto
    simplified: bool
    message: str


def simplify(model: onnx.ModelProto, test_shape: tuple[int, int, int, int]) -> SimplifyResult:
    """Simplify `model`, checking outputs with onnxsim on an input of `test_shape`."""
    import onnxsim

    input_name = model.graph.input[0].name
    nodes_before = len(model.graph.node)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            simplified, check_ok = onnxsim.simplify(
                model, check_n=1, test_input_shapes={input_name: list(test_shape)}
            )
    except Exception as exc:  # onnxsim surfaces C++ and onnx errors of every kind
        check_interrupted()  # a Ctrl-C its C++ turned into an error is no failed simplification
        first = runtime_reason(exc)
        return SimplifyResult(model, False, f"onnxsim failed ({first}); kept the unsimplified model")
    # onnxsim's constant folding takes a Ctrl-C for an op it could not fold, and goes on.
    check_interrupted()
    if not check_ok:
        return SimplifyResult(model, False, "onnxsim's output check failed; kept the unsimplified model")
    nodes_after = len(simplified.graph.node)
    return SimplifyResult(simplified, True, f"simplified with onnxsim: {nodes_before} -> {nodes_after} nodes")
