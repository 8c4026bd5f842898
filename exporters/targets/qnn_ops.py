"""The operators ONNX Runtime's QNN execution provider can hand to QNN: data, no code.

Source: onnxruntime/onnxruntime-qnn (where the QNN EP is developed since it left the main
repository), onnxruntime/core/providers/qnn/builder/op_builder_factory.cc at commit
cee6c0d91e583d43f5ecef6391e93c19b4042c0f (2026-03-13): the op types its `OpBuilderRegistrations`
registers. No wheel installed here ships the list (onnxruntime's CPU wheel has no QNN EP; its
`quantization.execution_providers.qnn` package holds the quantization config only), so it is copied.

The EP looks a builder up by op type alone (`GetOpBuilder(node.OpType())`), which is why the
com.microsoft ops among them (FusedMatMul, MatMulNBits, QuickGelu, SimplifiedLayerNormalization,
QuantizeLinear/DequantizeLinear) are matched by name too. Whether the HTP takes a registered op
with the node's types, rank and attributes is decided by each builder's `IsOpSupported`, which
calls the QNN SDK's op validation: only a device (or the SDK) can tell.
"""

from __future__ import annotations

SOURCE = "onnxruntime/onnxruntime-qnn op_builder_factory.cc @cee6c0d (2026-03-13)"

# Domains whose nodes the QNN EP considers at all (ai.onnx and ORT's contrib ops).
DOMAINS: frozenset[str] = frozenset(("", "ai.onnx", "com.microsoft"))

SUPPORTED: frozenset[str] = frozenset((
    "Abs", "Add", "And", "ArgMax", "ArgMin", "Asin", "Atan", "AveragePool", "BatchNormalization", "Cast",
    "Ceil", "Clip", "Concat", "Conv", "ConvTranspose", "Cos", "CumSum", "DepthToSpace", "DequantizeLinear",
    "Div", "Einsum", "Elu", "Equal", "Exp", "Expand", "Flatten", "Floor", "FusedMatMul", "Gather",
    "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Greater",
    "GreaterOrEqual", "GridSample", "GroupNormalization", "HardSigmoid", "HardSwish", "InstanceNormalization",
    "Inverse", "IsNaN", "LRN", "LSTM", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log",
    "LogSoftmax", "LpNormalization", "MatMul", "MatMulNBits", "Max", "MaxPool", "Mean", "Min", "Mod", "Mul",
    "Neg", "Not", "Or", "PRelu", "Pad", "Pow", "QuantizeLinear", "QuickGelu", "RMSNormalization",
    "RandomUniformLike", "Reciprocal", "ReduceL2", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd",
    "ReduceSum", "Relu", "Reshape", "Resize", "RoiAlign", "Round", "STFT", "ScatterElements", "ScatterND",
    "Sigmoid", "Sign", "SimplifiedLayerNormalization", "Sin", "Slice", "Softmax", "SpaceToDepth", "Split",
    "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose",
    "Unsqueeze", "Upsample", "Where",
))
