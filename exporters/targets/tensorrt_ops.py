"""TensorRT's ONNX operator support, as onnx-tensorrt documents it: data, no code.

Source: onnx/onnx-tensorrt, docs/operators.md at commit 96e781103cfc4adf4a6bb557e94bac8e693f6f4c
("ONNX-TensorRT 10.1 GA release", 2024-06-17): "TensorRT 10.0 supports operators in the inclusive
range of opset 9 to opset 20". No library installed here tells (the `tensorrt` wheel's
`OnnxParser.supports_model_v2` needs the TensorRT libraries and, for most uses, a GPU), so the matrix
is copied: `SUPPORTED` holds the operators marked Y, `RESTRICTIONS` their restrictions column (what
the check reports as caveats), `NOT_SUPPORTED` those marked N. All are in the ai.onnx domain.
"""

from __future__ import annotations

SOURCE = "onnx/onnx-tensorrt docs/operators.md @96e7811 (TensorRT 10.1, opsets 9-20)"
MAX_OPSET = 20

SUPPORTED: frozenset[str] = frozenset((
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "AveragePool",
    "BatchNormalization", "Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat", "Constant", "ConstantOfShape",
    "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DeformConv", "DepthToSpace", "DequantizeLinear", "Div",
    "Dropout", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor", "GRU",
    "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool", "GlobalLpPool",
    "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GroupNormalization", "HardSigmoid",
    "HardSwish", "Hardmax", "Identity", "If", "ImageScaler", "InstanceNormalization", "IsInf", "IsNaN", "LRN",
    "LSTM", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop",
    "LpNormalization", "LpPool", "MatMul", "Max", "MaxPool", "Mean", "MeanVarianceNormalization", "Min",
    "Mish", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "PRelu", "Pad",
    "ParametricSoftplus", "Pow", "QuantizeLinear", "RNN", "RandomNormal", "RandomNormalLike", "RandomUniform",
    "RandomUniformLike", "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
    "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape",
    "Resize", "ReverseSequence", "RoiAlign", "Round", "ScaledTanh", "Scan", "Scatter", "ScatterElements",
    "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax",
    "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh",
    "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Upsample", "Where", "Xor",
))

NOT_SUPPORTED: frozenset[str] = frozenset((
    "AffineGrid", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor",
    "BlackmanWindow", "CenterCropPad", "Col2Im", "Compress", "ConcatFromSequence", "ConvInteger", "DFT",
    "Det", "DynamicQuantizeLinear", "HammingWindow", "HannWindow", "ImageDecoder", "MatMulInteger",
    "MaxRoiPool", "MaxUnpool", "MelWeightMatrix", "Multinomial", "NegativeLogLikelihoodLoss", "Optional",
    "OptionalGetElement", "OptionalHasElement", "QLinearConv", "QLinearMatMul", "RegexFullMatch", "STFT",
    "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength",
    "SequenceMap", "SoftmaxCrossEntropyLoss", "SplitToSequence", "StringConcat", "StringNormalizer",
    "StringSplit", "TfIdfVectorizer", "Unique",
))

RESTRICTIONS: dict[str, str] = {
    "AveragePool": "2D or 3D Pooling only. `dilations` must be empty or all ones",
    "Constant": "`sparse_value`, `value_string`, and `value_strings` attributes are unsupported.",
    "CumSum": "`axis` must be an initializer",
    "DeformConv": (
        "`input` must have 1D or 2D spatial dimensions. `pads` for the beginning and end along each spatial "
        "axis must be the same"
    ),
    "DequantizeLinear": "`x_zero_point` must be zero",
    "Dropout": "`is_traning` must be an initializer and evaluate to False.",
    "EyeLike": "`input` must have static dimensions",
    "GRU": "For bidirectional GRUs, activation functions must be the same for both the forward and reverse pass",
    "GridSample": "Input must be 4D input.",
    "Hardmax": "`axis` dimension of input must be a build-time constant",
    "If": "Output tensors of the two conditional branches must have the same rank and must have different names",
    "LSTM": (
        "For bidirectional LSTMs, activation functions must be the same for both the forward and reverse "
        "pass. `input_forget` attribute must be 0. `layout` attribute must be 0."
    ),
    "LayerNormalization": "Only the first output `Y` is supported.",
    "Loop": (
        "Scan output length cannot be dynamic. The shape of Loop carried dependencies must be the same across "
        "all loop iterations."
    ),
    "LpPool": "`dilations` must be empty or all ones",
    "MaxPool": "2D or 3D pooling only. `Indices` output tensor unsupported. `dilations` must be empty or all ones",
    "OneHot": "`depth` must be a build-time constant",
    "Pad": "`axes` must be an initializer",
    "QuantizeLinear": "`y_zero_point` must be 0",
    "RNN": "For bidirectional RNNs, activation functions must be the same for both the forward and reverse pass",
    "RandomNormal": "`seed` value is ignored by TensorRT",
    "RandomNormalLike": "`seed` value is ignored by TensorRT",
    "RandomUniform": "`seed` value is ignored by TensorRT",
    "RandomUniformLike": "`seed` value is ignored by TensorRT",
    "ReduceL1": "`axes` must be an initializer",
    "ReduceL2": "`axes` must be an initializer",
    "ReduceLogSum": "`axes` must be an initializer",
    "ReduceLogSumExp": "`axes` must be an initializer",
    "ReduceMax": "`axes` must be an initializer",
    "ReduceMean": "`axes` must be an initializer",
    "ReduceMin": "`axes` must be an initializer",
    "ReduceProd": "`axes` must be an initializer",
    "ReduceSum": "`axes` must be an initializer",
    "ReduceSumSquare": "`axes` must be an initializer",
    "Resize": (
        "Supported resize transformation modes: `half_pixel`, `pytorch_half_pixel`, `tf_half_pixel_for_nn`, "
        "`asymmetric`, and `align_corners`. Supported resize modes: `nearest`, `linear`. Supported nearest "
        "modes: `floor`, `ceil`, `round_prefer_floor`, `round_prefer_ceil`. Supported aspect ratio policy: "
        "`stretch`. When `scales` is a tensor input, `axes` must be an iota vector of length rank(input). "
        "Antialiasing is not supported."
    ),
    "ScatterND": "`reduction` is not supported",
    "Slice": "`axes` must be an initializer",
    "Squeeze": "`axes` must be an initializer",
    "TopK": "`sorted` must be 1. `K` input must be less than 3840.",
    "Unsqueeze": "`axes` must be a constant tensor",
}
