"""The table of edge targets: one frozen `Target` per device runtime, data only.

Each entry says what its runtime needs from the file (static shape, opset bounds, precision),
which artefact segedge writes for it, which operator checks run here, what only the device can
build or check, and where each requirement comes from. `exporters.targets.build` reads the
table; nothing in it imports onnx, onnxruntime's tools and quantizer, or openvino, so the CLI can
list targets and their choices cheaply (`target_names()`, `get_target(name).precisions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from runtimes.errors import UsageError


class Artefact(str, Enum):
    """What segedge writes; each kind has one writer in this package."""

    onnx = "onnx"  # one self-contained .onnx file
    ort_format = "ort_format"  # .ort flatbuffer + its required-operators config (ORT Mobile)
    qnn_qdq = "qnn_qdq"  # QDQ .onnx with ORT's QNN quantization config
    openvino_ir = "openvino_ir"  # OpenVINO IR: .xml + .bin
    # Not built from the ONNX file by `build_for_target` (`builds_from_onnx` is False):
    web_folder = "web_folder"  # a folder: model.onnx, card.json, segedge.js, index.html, onnxruntime-web (exporters.targets.web)
    mlpackage = "mlpackage"  # a Core ML .mlpackage converted from the PyTorch model by coremltools (segedge.export.mlpackage)
    litert = "litert"  # a .tflite flatbuffer converted from the PyTorch model by litert-torch (exporters.targets.litert)
    executorch = "executorch"  # a .pte program lowered from the PyTorch model by ExecuTorch (exporters.targets.executorch)


class OrtStyle(str, Enum):
    """ORT format optimisation styles (`convert_onnx_models_to_ort --optimization_style`)."""

    fixed = "Fixed"  # all optimisations applied before saving: for ORT's CPU EP
    runtime = "Runtime"  # basic ones applied, others saved for replay: ORT recommends it for NNAPI and CoreML


class Check(str, Enum):
    """Operator checks; `exporters.targets.checks.run_check` runs one."""

    ort_cpu_kernels = "ort_cpu_kernels"  # this onnxruntime's CPU kernel registry
    ort_cuda_kernels = "ort_cuda_kernels"  # its CUDA kernel registry (onnxruntime-gpu builds only)
    nnapi_ops = "nnapi_ops"  # ORT's nnapi_supported_ops.md + ORT's partitioning estimate
    coreml_mlprogram_ops = "coreml_mlprogram_ops"  # ORT's coreml_supported_mlprogram_ops.md + partitioning
    qnn_htp_ops = "qnn_htp_ops"  # the QNN EP's op builder registry (exporters/targets/qnn_ops.py)
    tensorrt_ops = "tensorrt_ops"  # onnx-tensorrt's operator matrix (exporters/targets/tensorrt_ops.py)
    openvino_devices = "openvino_devices"  # OpenVINO's ONNX frontend + core.query_model per device
    coreml_mil_ops = "coreml_mil_ops"  # coremltools' MIL operator registry, on the written .mlpackage (mlpackage_spec.py)
    litert_xnnpack = "litert_xnnpack"  # the .tflite on ai-edge-litert's interpreter: what its XNNPACK delegate took
    xnnpack_delegate = "xnnpack_delegate"  # ExecuTorch's XnnpackPartitioner: what it left outside the delegate


@dataclass(frozen=True)
class Target:
    name: str
    runtime: str  # the device runtime, in words
    artefact: Artefact
    artefact_suffix: str  # of the main file; sidecars (.bin, .config) sit beside it
    static_shape: bool  # batch 1 and H x W from `input_size` baked into the graph
    max_opset: int | None  # the ai.onnx opset is lowered to this when above it
    min_opset: int | None  # ... and raised to this when below it
    opset_reason: str  # why the bounds, with a source ("" when there are none)
    default_precision: str
    precisions: tuple[str, ...]
    activations: str | None  # quantized activation type (QNN: uint16)
    checks: tuple[Check, ...]
    weight_types: tuple[str, ...] = ()  # quantized weight types, the default first
    ort_style: OrtStyle | None = None  # for Artefact.ort_format
    ort_platform: str | None = None  # convert_onnx_models_to_ort --target_platform
    needs_device_to_run: bool = False  # its deployed form is built on or for the device
    not_built: tuple[str, ...] = ()  # what only the device (or its SDK) builds
    not_checked: tuple[str, ...] = ()  # what the checks here cannot tell
    note: str = ""

    @property
    def builds_from_onnx(self) -> bool:
        """`exporters.targets.build_for_target` writes it; the others have writers of their own."""
        return self.artefact not in (Artefact.web_folder, Artefact.mlpackage, Artefact.litert, Artefact.executorch)

    @property
    def builds_from_torch(self) -> bool:
        """Converted from the PyTorch model by the runtime's own converter (`exporters.targets.from_torch`)."""
        return self.artefact in (Artefact.litert, Artefact.executorch)


_ORT_FORMAT_VERSIONS = ("an .ort file loads in ONNX Runtime of the version that wrote it or newer, "
                        "not older: match the app's onnxruntime-android/-ios version")
_SPEED = "speed on the device (time it there: `segedge bench` with the device's provider)"

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            name="cpu", runtime="ONNX Runtime, CPU execution provider", artefact=Artefact.onnx,
            artefact_suffix=".onnx", static_shape=False, max_opset=None, min_opset=None, opset_reason="",
            default_precision="fp32", precisions=("fp32",), activations=None,
            checks=(Check.ort_cpu_kernels,),
            note="today's export: the dynamic-shape file, re-checked; int8/fp16 come from `segedge quantize`",
        ),
        Target(
            name="gpu", runtime="ONNX Runtime, CUDA execution provider", artefact=Artefact.onnx,
            artefact_suffix=".onnx", static_shape=False, max_opset=None, min_opset=None, opset_reason="",
            default_precision="fp32", precisions=("fp32", "fp16"), activations=None,
            # CPU kernels too: what CUDA lacks runs there, and what neither has fails the model.
            checks=(Check.ort_cuda_kernels, Check.ort_cpu_kernels),
            not_checked=(("which nodes ONNX Runtime really places on the CPU (`segedge bench --provider cuda --strict` "
                          "on the GPU)"), _SPEED),
        ),
        Target(
            name="mobile", runtime="ONNX Runtime Mobile (onnxruntime-android / -ios), CPU execution provider",
            artefact=Artefact.ort_format, artefact_suffix=".ort", static_shape=False, max_opset=None,
            min_opset=None, opset_reason="", default_precision="fp32", precisions=("fp32",), activations=None,
            checks=(Check.ort_cpu_kernels,), ort_style=OrtStyle.fixed, ort_platform="arm",
            not_checked=(_ORT_FORMAT_VERSIONS, "ARM kernels (the file is verified on this machine's x86 kernels)",
                         _SPEED),
            note="optimised for ARM (no x86-only NCHWc layout); the .required_operators.config beside it "
                 "is the --include_ops_by_config input of a reduced ONNX Runtime build",
        ),
        Target(
            name="nnapi", runtime="ONNX Runtime Mobile, NNAPI execution provider (Android)",
            artefact=Artefact.ort_format, artefact_suffix=".ort", static_shape=True, max_opset=None,
            min_opset=None, opset_reason="", default_precision="fp32", precisions=("fp32",), activations=None,
            checks=(Check.nnapi_ops,), ort_style=OrtStyle.runtime, ort_platform="arm",
            not_checked=(
                ("the per-operator conditions of ORT's list (the 'caveats' of the check), which the NNAPI EP tests on "
                 "the device"),
                "what the phone's NNAPI driver accelerates and what it runs on its own CPU fallback",
                _ORT_FORMAT_VERSIONS, _SPEED,
            ),
            note="static shapes: ORT's NNAPI EP takes only nodes whose inputs have fixed sizes",
        ),
        Target(
            name="coreml", runtime="ONNX Runtime Mobile, CoreML execution provider (iOS / macOS), ML Program",
            artefact=Artefact.ort_format, artefact_suffix=".ort", static_shape=True, max_opset=None,
            min_opset=None, opset_reason="", default_precision="fp32", precisions=("fp32",), activations=None,
            checks=(Check.coreml_mlprogram_ops,), ort_style=OrtStyle.runtime, ort_platform="arm",
            not_checked=("the per-operator conditions of ORT's list (the 'caveats' of the check)",
                         "whether CoreML puts the partitions on the Neural Engine, GPU or CPU",
                         _ORT_FORMAT_VERSIONS, _SPEED),
            note="checked against the ML Program operator list (CoreML EP option ModelFormat=MLProgram); "
                 "static shapes because CoreML runs dynamic ones slowly or on the CPU",
        ),
        Target(
            name="qnn", runtime="ONNX Runtime, QNN execution provider, HTP (Hexagon NPU) backend",
            artefact=Artefact.qnn_qdq, artefact_suffix=".onnx", static_shape=True, max_opset=None, min_opset=21,
            opset_reason="ai.onnx opset 21 is the first whose QuantizeLinear/DequantizeLinear take 16-bit types; "
                         "below it ORT's get_qnn_qdq_config falls back to com.microsoft-domain Q/DQ "
                         "(onnxruntime/quantization/execution_providers/qnn/quant_config.py)",
            default_precision="int8", precisions=("int8",), activations="uint16",
            # uint8 is ORT's documented QNN choice; int8 (symmetric) is the one ORT's quantizer keeps
            # int32 biases in range for (it widens the weight scale only for signed symmetric weights).
            weight_types=("uint8", "int8"),
            checks=(Check.qnn_htp_ops,), needs_device_to_run=True,
            not_built=("the QNN context binary (ORT's QNN EP with ep.context_enable=1, on the device or the QNN SDK)",),
            not_checked=(("the HTP's per-operator constraints (types, ranks, attributes), which the QNN SDK "
                          "validates when the graph is finalised on the device"),
                         "accuracy of the HTP's own fixed-point kernels (verified here on ORT's CPU QDQ kernels)",
                         _SPEED),
            note="QDQ with uint16 activations and uint8 weights (ORT's QNN config; weights='int8' for signed "
                 "symmetric ones when verification fails on clipped int32 biases); HTP needs static shapes",
        ),
        Target(
            name="openvino", runtime="OpenVINO runtime (CPU, GPU, NPU plugins)", artefact=Artefact.openvino_ir,
            artefact_suffix=".xml", static_shape=False, max_opset=None, min_opset=None, opset_reason="",
            default_precision="fp32", precisions=("fp32", "fp16"), activations=None,
            checks=(Check.openvino_devices,),
            not_checked=(
                "devices this machine lacks (the check queries every OpenVINO device present)",
                ("the precision a plugin picks at run time (bf16 on CPUs with AMX or AVX-512 BF16, fp16 on GPU/NPU; "
                 "verified here with INFERENCE_PRECISION_HINT=f32)"),
                _SPEED,
            ),
            note="dynamic N/H/W kept (the app reshapes the model to its size); the NPU plugin needs a static "
                 "shape: model.reshape() before compile_model; fp16 compresses the weights",
        ),
        Target(
            name="tensorrt", runtime="TensorRT (trtexec, or ONNX Runtime's TensorRT execution provider)",
            artefact=Artefact.onnx, artefact_suffix=".onnx", static_shape=True, max_opset=20, min_opset=None,
            opset_reason="onnx-tensorrt docs/operators.md at commit 96e7811 (the 10.1 GA release): \"TensorRT 10.0 "
                         "supports operators in the inclusive range of opset 9 to opset 20\"; later editions "
                         "(TensorRT 10.15) reach opset 24",
            default_precision="fp32", precisions=("fp32",), activations=None,
            checks=(Check.tensorrt_ops,), needs_device_to_run=True,
            not_built=(
                ("the TensorRT engine (trtexec --onnx=..., or the TensorRT EP's engine cache, on the GPU); its "
                 "precision (--fp16, --int8) is chosen when it is built"),
            ),
            not_checked=(("the restrictions column of TensorRT's matrix (the 'caveats' of the check) and data "
                          "types, which TensorRT's parser checks when the engine is built"), _SPEED),
            note="static shape: one engine profile at --input-size; unsupported nodes fall back to CUDA/CPU "
                 "only under ONNX Runtime's TensorRT EP",
        ),
        Target(
            name="web", runtime="onnxruntime-web 1.31.1, WASM execution provider (SIMD, threads when cross-origin "
                                "isolated), in the browser",
            artefact=Artefact.web_folder, artefact_suffix="", static_shape=False, max_opset=None, min_opset=None,
            opset_reason="", default_precision="fp32", precisions=("fp32", "int8"), activations=None,
            # onnxruntime-web's WASM build carries ONNX Runtime's CPU kernels (of its own version).
            checks=(Check.ort_cpu_kernels,),
            not_checked=(("masks in a browser at export time: the tests run the exported page in headless Chromium and "
                          "compare its masks with the Predictor's (tests/test_web_target.py)"),
                         "WebGPU (the module asks for the WASM execution provider only)",
                         "speed in your users' browsers (benchmarks/bench_web.py times it in headless Chromium here)"),
            note="a folder to drop into a site: model.onnx (dynamic H/W), card.json, segedge.js (an ES module: "
                 "load, preprocess as the Predictor does, run, mask, overlay), index.html (a demo), ort/ (the "
                 "pinned onnxruntime-web files) and serve.py (127.0.0.1 with COOP/COEP, so WASM threads are on)",
        ),
        Target(
            name="mlpackage", runtime="Core ML (iOS / macOS), ML Program in a .mlpackage, via coremltools 9.0",
            artefact=Artefact.mlpackage, artefact_suffix=".mlpackage", static_shape=False, max_opset=None,
            min_opset=None, opset_reason="", default_precision="fp32", precisions=("fp32", "fp16", "int8"),
            activations=None, checks=(Check.coreml_mil_ops,),
            not_checked=("numerics: a .mlpackage runs only on macOS / iOS (`segedge verify MODEL.mlpackage` on a Mac "
                         "compares it with PyTorch; here it says it cannot)",
                         "which operators Core ML places on the Neural Engine, GPU or CPU",
                         "speed on the device (Xcode's Core ML performance report)"),
            note="converted from the PyTorch model (ct.convert on a torch.export program, convert_to='mlprogram'), "
                 "not from ONNX; flexible H/W (RangeDim) where the graph converts with it, else the static "
                 "--input-size (said); int8: linear_quantize_weights (weights only); the card in the package's "
                 "user metadata. Not the `coreml` target, which writes an ORT-format file for ONNX Runtime's "
                 "CoreML execution provider",
        ),
        Target(
            name="litert", runtime="LiteRT (TensorFlow Lite) interpreter, XNNPACK delegate (Android, iOS, embedded CPUs)",
            artefact=Artefact.litert, artefact_suffix=".tflite", static_shape=True, max_opset=None, min_opset=None,
            opset_reason="", default_precision="fp32", precisions=("fp32", "int8"), activations=None,
            checks=(Check.litert_xnnpack,),
            not_checked=("GPU and NPU delegates (LiteRT's GPU delegate, NNAPI, vendor NPUs): the check loads the "
                         "file with XNNPACK, the CPU delegate", "ARM kernels (verified on this machine's x86 build "
                         "of the same XNNPACK kernels)", _SPEED),
            note="converted from the PyTorch model by litert-torch (not from ONNX); static input at --input-size "
                 "(litert-torch bakes resize targets into the graph); NHWC input and output with --layout NHWC; "
                 "int8: ai-edge-quantizer's static_wi8_ai8 recipe on the converted file (int8 weights and "
                 "activations, int8 input and output tensors, which the Predictor quantizes with their scales); "
                 "the card in the flatbuffer's metadata (segedge_card)",
        ),
        Target(
            name="executorch", runtime="ExecuTorch runtime, XNNPACK delegate (Android, iOS, embedded CPUs)",
            artefact=Artefact.executorch, artefact_suffix=".pte", static_shape=False, max_opset=None,
            min_opset=None, opset_reason="", default_precision="fp32", precisions=("fp32", "int8"),
            activations=None, checks=(Check.xnnpack_delegate,),
            not_checked=("other ExecuTorch backends (Core ML, Vulkan, QNN, MPS)", "ARM kernels (verified on this "
                         "machine's x86 build of the same XNNPACK kernels)", _SPEED),
            note="lowered from the PyTorch model (torch.export -> to_edge_transform_and_lower with XnnpackPartitioner "
                 "-> to_executorch), not from ONNX; H and W dynamic within --side-range (default 64 "
                 "to 1024 pixels; larger images are tiled), or static at --input-size with --static; int8: PT2E with "
                 "ExecuTorch's XNNPACKQuantizer; the card in the program as the constant method segedge_card",
        ),
    )
}


def target_names() -> tuple[str, ...]:
    return tuple(TARGETS)


def get_target(target: Target | str) -> Target:
    if isinstance(target, Target):
        return target
    try:
        return TARGETS[target]
    except KeyError:
        raise UsageError(f"unknown target {target!r}; targets: {', '.join(TARGETS)}") from None
