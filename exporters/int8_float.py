"""What int8 leaves in float: the transformer rule, and what a quantized ONNX graph kept in float.

A transformer's LayerNorm, Softmax and GELU (Erf) see values whose range int8 cannot hold
without losing the small ones that decide the result (a LayerNorm's input spans the residual
stream's outliers; a Softmax's input the attention logits), and the two MatMuls of attention
multiply two activations, each with its own per-tensor scale. ONNX Runtime's QDQ quantizer
leaves Softmax and Erf in float (it has no QDQ rule for them) but quantizes every MatMul and
LayerNormalization; `transformer_float_nodes` names the ones to give back. The rule applies only
to graphs that have attention (`has_attention`: a MatMul of two activations); convolutional
networks keep every op int8 as before.

`float_compute` / `int8_compute` count, per op type, the compute nodes a QDQ graph runs in float
and in int8: the model card's record of what the quantizer did.
"""

from __future__ import annotations

from collections import Counter

import onnx

# Compute ops whose precision decides speed and accuracy (the rest move or reshape values).
COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "LayerNormalization", "Softmax", "Erf", "Gelu")
# What a transformer's int8 keeps in float, beside the attention MatMuls.
TRANSFORMER_FLOAT_OPS = ("LayerNormalization", "Softmax", "Erf", "Gelu")
# Ops that move values without computing: ONNX Runtime's QDQ quantizer quantizes them wherever their input
# is quantized, and a MatMul fed by a quantized Transpose runs in int8 (ORT fuses DequantizeLinear -> MatMul)
# however it was excluded; the ones between an attention MatMul and the op that computed its operands stay float.
# What sits between Q K^T and its Softmax: the scale, the position bias, the shifted-window mask.
ATTENTION_LOGIT_OPS = ("Mul", "Div", "Add", "Where", "Reshape", "Softmax")
MOVEMENT_OPS = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Slice", "Split", "Gather")


def attention_matmuls(model: onnx.ModelProto) -> list[str]:
    """MatMul nodes neither of whose operands is a weight: attention's Q K^T and its softmax(.) V."""
    constants = _constant_values(model)
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and not any(name in constants for name in n.input)]


def has_attention(model: onnx.ModelProto) -> bool:
    return bool(attention_matmuls(model))


def transformer_float_nodes(model: onnx.ModelProto) -> list[str]:
    """The nodes a transformer's int8 keeps in float: attention MatMuls and the TRANSFORMER_FLOAT_OPS
    (ONNX Runtime would quantize the MatMuls and LayerNormalizations); none for a graph without attention."""
    attention = attention_matmuls(model)
    if not attention:
        return []
    producers = {o: n for n in model.graph.node for o in n.output}
    constants = _constant_values(model)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    kept = list(attention)
    for node in model.graph.node:
        if node.name in attention:
            kept += _movements_into(node, producers, constants) + _on_to_softmax(node, consumers)
    kept += [n.name for n in model.graph.node if n.op_type in TRANSFORMER_FLOAT_OPS]
    return list(dict.fromkeys(kept))


def _on_to_softmax(node: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]]) -> list[str]:
    """The scaling, bias and mask ops between an attention MatMul (Q K^T) and its Softmax: the logits
    there span the masked -100s and the largest scores, which one int8 scale cannot both hold."""
    found, current = [], node
    while len(following := consumers.get(current.output[0], [])) == 1:
        current = following[0]
        if current.op_type not in ATTENTION_LOGIT_OPS:
            break
        found.append(current.name)
    return found


def _movements_into(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto], constants: set[str]) -> list[str]:
    """The movement ops that carry values into `node`'s operands from where they were computed."""
    found, todo = [], [name for name in node.input if name and name not in constants]
    while todo:
        producer = producers.get(todo.pop())
        if producer is not None and producer.op_type in MOVEMENT_OPS:
            found.append(producer.name)
            todo += [name for name in producer.input[:1] if name and name not in constants]
    return found


def int8_compute(model: onnx.ModelProto) -> dict[str, int]:
    """Compute nodes of a QDQ graph whose inputs all come out of DequantizeLinear (run in int8), per op type."""
    return _count(model, quantized=True)


def float_compute(model: onnx.ModelProto) -> dict[str, int]:
    """Compute nodes of a QDQ graph that run in float (an input not dequantized), per op type."""
    return _count(model, quantized=False)


def _count(model: onnx.ModelProto, quantized: bool) -> dict[str, int]:
    dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    requantized = {i for n in model.graph.node if n.op_type == "QuantizeLinear" for i in n.input[:1]}
    counts: Counter[str] = Counter()
    for node in model.graph.node:
        if node.op_type in COMPUTE_OPS:
            counts[node.op_type] += _runs_in_int8(node, dequantized, requantized) == quantized
    return {op: n for op, n in sorted(counts.items()) if n}


def _runs_in_int8(node: onnx.NodeProto, dequantized: set[str], requantized: set[str]) -> bool:
    """ONNX Runtime runs a QDQ node in int8 when its operands are dequantized int8 and its result is
    quantized again; a MatMul or Gemm also when its result stays float (MatMulIntegerToFloat). A bias,
    or a LayerNorm's scale, stays float in QDQ: the first two inputs decide."""
    operands = [name for name in node.input[:2] if name]
    if not all(name in dequantized for name in operands):
        return False
    return node.op_type in ("MatMul", "Gemm") or all(name in requantized for name in node.output[:1])


def _constant_values(model: onnx.ModelProto) -> set[str]:
    """Names of values that do not depend on the graph's inputs: initializers, Constants and what
    is computed from them alone (a transposed or dequantized weight)."""
    constants = {i.name for i in model.graph.initializer}
    for node in model.graph.node:  # topologically sorted: segedge writes and ORT's pre-processor keeps it so
        if node.op_type == "Constant" or (node.input and all(not name or name in constants for name in node.input)):
            constants.update(node.output)
    return constants
