"""Per-runtime quantizer adapters for the sensitivity ranking and the repair search.

The algorithms (`segedge.quantize.sensitivity`, `segedge.quantize.repair`) know candidates and
measurements only; an adapter knows one runtime's quantizer: which calibration methods and weight
schemes it has, what "higher precision" means there, and how to build a candidate file. That is
NNCF's split of an algorithm from its backends: a PT2E quantizer (LiteRT, ExecuTorch) plugs in as
one more adapter whose `build` keeps `kept` modules in float.

- `ort_qdq.OrtQdq`: ONNX Runtime's QDQ quantizer; higher precision = float (nodes_to_exclude).
- `qnn_qdq.QnnQdq`: ORT's QNN config (uint16 activations); higher precision = 16-bit weights.
- `openvino_nncf.NncfOpenVINO`: NNCF for OpenVINO; higher precision = float (ignored scope).
- `pt2e.Pt2eExecuTorch`: ExecuTorch's PT2E XNNPACKQuantizer on the PyTorch model; higher precision =
  float (nodes left out of the quantizer's annotation, run by XNNPACK in fp32).
- `litert_aeq.AeqLiteRT`: LiteRT's ai-edge-quantizer on litert-torch's float file; higher precision = float
  (the ops' scopes set to no_quantize in its recipe).
"""

from enum import Enum


class Backend(str, Enum):
    """The quantizers a sensitivity ranking is made for (the CLI names them without importing any)."""

    onnxruntime = "onnxruntime"  # ORT's QDQ quantizer: layers kept in float
    openvino = "openvino"  # NNCF: layers kept in float (ignored scope)
    qnn = "qnn"  # ORT's QNN config, uint16 activations: layers get 16-bit weights
    litert = "litert"  # ai-edge-quantizer on the float .tflite of the PyTorch model the card records: ops kept in float
    executorch = "executorch"  # PT2E with XNNPACKQuantizer on the PyTorch model the card records: layers kept in float
