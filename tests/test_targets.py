"""Edge targets (exporters/targets): every target built from a small exported model, a foreign one
and one with operators some targets cannot run; artefacts opened and run for real, numbers asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from torch import nn

from exporters.card_io import embed_card
from exporters.targets import (
    TARGETS,
    TargetBuildError,
    build_for_target,
    default_output,
    get_target,
    read_artefact_metadata,
    target_names,
)
from exporters.torch_to_onnx import export_onnx
from runtimes.model.card import CARD_KEY, ModelCard
from runtimes.errors import CardError, UsageError
from tests.target_models import conv_node as _conv, write_segnet_model

SIZE = (64, 64)
CLASSES = ("dark", "red", "green", "blue")
ONNX_TARGETS = [name for name, t in TARGETS.items() if t.builds_from_onnx]  # the others convert the PyTorch model
FP32_TARGETS = [name for name in ONNX_TARGETS if name != "qnn"]


class ColourNet(nn.Module):
    """conv -> stride-2 conv -> conv -> 1x1, resized back; class c+1 where colour channel c is bright, 0 where dark."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.mix = nn.Conv2d(8, 8, 3, padding=1)
        self.classifier = nn.Conv2d(8, 4, 1)
        with torch.no_grad():
            for layer in (self.stem, self.down, self.mix):
                layer.weight.mul_(0.2)
                layer.weight[:, :, 1, 1] += torch.eye(8, layer.in_channels)
            self.classifier.weight.mul_(0.1)
            for c in range(1, 4):
                self.classifier.weight[c, c - 1, 0, 0] += 4.0
            self.classifier.bias.fill_(0.0)
            self.classifier.bias[0] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.mix(F.relu(self.down(F.relu(self.stem(x))))))
        return F.interpolate(self.classifier(y), size=x.shape[-2:], mode="bilinear", align_corners=False)


def blocks(height: int, width: int, seed: int) -> np.ndarray:
    """Large blocks of pure red, green, blue and black: every class covers a good part of the image."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), dtype=np.uint8)
    for top in range(0, height, height // 2):
        for left in range(0, width, width // 2):
            channel = int(rng.integers(0, 4))
            if channel < 3:
                image[top : top + height // 2, left : left + width // 2, channel] = 230
    return image


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("targets")


@pytest.fixture(scope="module")
def calib(folder) -> Path:
    """8 images of another size than the model's (80 x 96): calibration resizes them to its static shape."""
    path = folder / "calib"
    path.mkdir()
    for i in range(8):
        Image.fromarray(blocks(80, 96, seed=i)).save(path / f"{i}.png")
    return path


@pytest.fixture(scope="module")
def zoo_model(folder) -> Path:
    """ColourNet exported as `segedge export` does (dynamo, dynamic N/H/W) with a segedge card."""
    torch.manual_seed(0)
    path = folder / "colournet.onnx"
    proto = export_onnx(ColourNet(), path, input_size=SIZE)
    card = ModelCard(name="colournet", architecture="colournet", classes=CLASSES, size_divisor=8, input_size=SIZE,
                     opset=18, exporter="dynamo")
    onnx.save(embed_card(proto, card), str(path))
    return path


@pytest.fixture(scope="module")
def foreign_model(folder) -> Path:
    """Built with onnx.helper, no card, opset 22 (above TensorRT's cap): conv -> relu -> stride-2 conv -> 2x Resize."""
    rng = np.random.default_rng(1)
    c1, i1 = _conv("conv_a", "input", "a", rng, 3, 6)
    c2, i2 = _conv("conv_b", "a_relu", "b", rng, 6, 3, strides=[2, 2])
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [c1, helper.make_node("Relu", ["a"], ["a_relu"], name="relu_a"), c2,
             helper.make_node("Resize", ["b", "", "scales"], ["out"], name="upsample", mode="linear")]
    graph = helper.make_graph(nodes, "foreign", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                               ["batch", 3, "height", "width"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, None, None])],
                              [*i1, *i2, scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], producer_name="elsewhere")
    onnx.checker.check_model(model, full_check=True)
    path = folder / "foreign.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def segnet_model(folder) -> Path:
    """SegNet-style: Mish, MaxPool with indices and MaxUnpool, which several targets cannot run (ORT's CPU can)."""
    return write_segnet_model(folder / "segnet.onnx")


@pytest.fixture(scope="module")
def zoo_builds(zoo_model, calib, folder):
    """Every target built once from the zoo-style model."""
    out = folder / "zoo"
    return {name: build_for_target(zoo_model, name, out / f"colournet_{name}{TARGETS[name].artefact_suffix}",
                                   input_size=SIZE, calib=calib if name == "qnn" else None, calib_count=8)
            for name in ONNX_TARGETS}


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# -- the table ------------------------------------------------------------------------------------
def test_the_table_names_every_target_of_the_issue_and_its_needs():
    assert target_names() == ("cpu", "gpu", "mobile", "nnapi", "coreml", "qnn", "openvino", "tensorrt", "web", "mlpackage",
                              "litert", "executorch")
    assert [n for n in TARGETS if not TARGETS[n].builds_from_onnx] == ["web", "mlpackage", "litert", "executorch"]
    for target in TARGETS.values():
        assert target.default_precision in target.precisions
        assert target.checks
        assert (target.max_opset is None and target.min_opset is None) or target.opset_reason
    static = {name for name, t in TARGETS.items() if t.static_shape}
    assert static == {"nnapi", "coreml", "qnn", "tensorrt", "litert"}
    assert TARGETS["qnn"].activations == "uint16" and TARGETS["qnn"].min_opset == 21
    assert TARGETS["tensorrt"].max_opset == 20
    assert {name for name, t in TARGETS.items() if t.needs_device_to_run} == {"qnn", "tensorrt"}
    with pytest.raises(UsageError, match="unknown target 'npu'"):
        get_target("npu")


def test_the_table_imports_nothing_heavy():
    # onnxruntime itself comes with `runtimes` (the Predictor); its tools and quantizer, onnx, OpenVINO
    # and torch wait until a build runs.
    heavy = ("onnx", "onnxruntime.quantization", "onnxruntime.tools", "openvino", "torch")
    code = ("import sys, exporters.targets.table, exporters.targets; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip() == "[]"


# -- the zoo-style model on every target ---------------------------------------------------------
@pytest.mark.parametrize("name", ONNX_TARGETS)
def test_every_target_writes_a_verified_artefact_with_its_card(zoo_builds, name):
    result = zoo_builds[name]
    target = TARGETS[name]
    assert result.path.name == f"colournet_{name}{target.artefact_suffix}" and result.path.is_file()
    assert all(p.is_file() for p in result.artefacts)
    assert result.precision == target.default_precision
    # Every check that could run here finds every node supported and nothing falling back.
    for report in result.checks:
        if report.ran:
            assert report.unsupported == () and report.supported == report.nodes > 0 and report.falling_back == 0
    assert result.verification is not None and result.verification.passed, result.verification
    minimum = 0.98 if name == "qnn" else 0.9999
    assert result.verification.argmax_agreement >= minimum
    assert result.verification.min_class_iou >= (0.85 if name == "qnn" else 0.999)
    assert result.verification.parity.images == 8
    meta = read_artefact_metadata(result.path)
    assert meta.card is not None and meta.card.name == "colournet" and meta.card.classes == CLASSES
    assert meta.card.parity["passed"] is True and meta.card.parity["reference_file"] == "colournet.onnx"
    assert meta.target is not None and meta.target["target"] == name
    assert meta.target["input"]["static"] is target.static_shape
    assert meta.card.dynamic is not target.static_shape
    json.dumps(result.to_dict())  # --json can print it


@pytest.mark.parametrize("name", [n for n in ONNX_TARGETS if TARGETS[n].static_shape])
def test_static_targets_bake_in_the_input_size(zoo_builds, name):
    result = zoo_builds[name]
    assert result.input_shape == (1, 3, *SIZE)
    session = _session(result.path)
    assert session.get_inputs()[0].shape == [1, 3, *SIZE]
    assert session.get_outputs()[0].shape == [1, 4, *SIZE]
    meta = read_artefact_metadata(result.path)
    assert meta.card is not None and meta.card.input_size == SIZE and meta.card.dynamic is False
    assert meta.shape_constraints() == "static input 1x3x64x64 only (batch 1): resize or tile images to it"
    if result.path.suffix == ".onnx":  # the exporter's Shape -> Concat -> Resize sizes are folded to constants
        assert "Shape" not in {n.op_type for n in onnx.load(str(result.path)).graph.node}


def test_dynamic_targets_keep_n_h_w_dynamic(zoo_builds):
    for name in ("cpu", "gpu", "mobile"):
        session = _session(zoo_builds[name].path)
        assert session.get_inputs()[0].shape == ["N", 3, "H", "W"]
        assert session.run(None, {"image": np.zeros((2, 3, 40, 56), np.float32)})[0].shape == (2, 4, 40, 56)
    assert read_artefact_metadata(zoo_builds["cpu"].path).shape_constraints() == (
        "dynamic input Nx3xHxW, H and W padded to multiples of 8")


def test_mobile_writes_ort_format_with_the_card_inside_and_the_operator_config(zoo_builds):
    result = zoo_builds["mobile"]
    ort_file, config = result.artefacts
    assert ort_file.suffix == ".ort" and config.name == "colournet_mobile.required_operators.config"
    assert ort_file.read_bytes()[4:8] == b"ORTM"  # the ORT format's flatbuffer identifier
    # The card travels inside the .ort: ORT returns it like an .onnx file's metadata.
    card = ModelCard.from_json(_session(ort_file).get_modelmeta().custom_metadata_map[CARD_KEY])
    assert card.name == "colournet" and card.classes == CLASSES
    lines = config.read_text().splitlines()
    assert lines[0] == "# Generated by onnxruntime's convert_onnx_models_to_ort from colournet_mobile.ort"
    assert "ai.onnx;11;Conv" in lines and "ai.onnx;18;Resize" in lines


def test_nnapi_and_coreml_use_orts_lists_and_count_one_partition(zoo_builds):
    for name, check in (("nnapi", "nnapi_ops"), ("coreml", "coreml_mlprogram_ops")):
        (report,) = zoo_builds[name].checks
        assert report.check == check and report.partitions == 1 and report.fallback == "CPUExecutionProvider"
        # The simplified static graph: 4 Conv (+Relu) and one Resize, all in ORT's list.
        assert report.nodes == report.supported == 8
        assert any(c.startswith("ai.onnx:Resize:") for c in report.caveats)
        assert zoo_builds[name].path.suffix == ".ort"


def test_qnn_writes_uint16_activation_qdq_that_runs_on_orts_cpu_provider(zoo_builds):
    result = zoo_builds["qnn"]
    model = onnx.load(str(result.path))
    assert result.opset == 21 and any(i.domain == "" and i.version == 21 for i in model.opset_import)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 4 and ops.count("QuantizeLinear") >= 5 and ops.count("DequantizeLinear") >= 13
    assert all(n.domain == "" for n in model.graph.node)  # ai.onnx Q/DQ: 16-bit types exist from opset 21
    inits = {i.name: i for i in model.graph.initializer}
    activation_zero_points = {inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert activation_zero_points == {TensorProto.UINT16}
    weights = [inits[n.input[0]] for n in model.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0].endswith("weight_quantized")]
    assert len(weights) == 4 and {w.data_type for w in weights} == {TensorProto.UINT8}
    assert result.card is not None and str(result.card.precision) == "int8"
    assert result.card.calibration["activations"] == "uint16" and result.card.calibration["images"] == 8
    assert result.verification is not None and result.verification.runtime == "ONNX Runtime CPU provider"
    (report,) = result.checks
    assert report.check == "qnn_htp_ops" and report.partitions == 1 and report.nodes == len(ops)
    assert result.not_built and "context binary" in result.not_built[0]


def test_openvino_ir_carries_the_card_in_rt_info_and_runs_on_openvinos_cpu(zoo_builds):
    import openvino as ov

    result = zoo_builds["openvino"]
    xml, binary = result.artefacts
    assert xml.suffix == ".xml" and binary == xml.with_suffix(".bin") and binary.stat().st_size > 1000
    model = ov.Core().read_model(str(xml))
    card = ModelCard.from_json(model.get_rt_info(["segedge", "card"]).astype(str))
    assert card.name == "colournet" and card.classes == CLASSES
    assert json.loads(model.get_rt_info(["segedge", "target"]).astype(str))["target"] == "openvino"
    assert model.inputs[0].get_partial_shape().is_dynamic
    assert result.verification is not None and result.verification.runtime == "OpenVINO CPU plugin, f32"
    (report,) = result.checks
    assert report.ran and "CPU" in report.note and report.nodes == report.supported


def test_what_needs_the_device_is_said_not_built(zoo_builds):
    assert "TensorRT engine" in zoo_builds["tensorrt"].not_built[0]
    gpu = zoo_builds["gpu"]
    cuda, cpu = gpu.checks
    assert cuda.check == "ort_cuda_kernels" and cuda.ran is False and "onnxruntime-gpu" in cuda.note
    assert cpu.check == "ort_cpu_kernels" and cpu.ran and cpu.supported == cpu.nodes
    for result in zoo_builds.values():
        assert result.not_checked or result.target == "cpu"


# -- a foreign model: no card, opset 22 ----------------------------------------------------------
@pytest.mark.parametrize("name", FP32_TARGETS)
def test_a_foreign_model_builds_for_every_fp32_target(foreign_model, folder, name):
    out = folder / "foreign" / f"foreign_{name}{TARGETS[name].artefact_suffix}"
    result = build_for_target(foreign_model, name, out, input_size=SIZE)
    assert result.card is None
    assert result.verification is not None and result.verification.passed
    assert result.verification.argmax_agreement >= 0.9999
    meta = read_artefact_metadata(result.path)
    assert meta.card is None and meta.target is not None and meta.target["target"] == name
    assert result.opset == (20 if name == "tensorrt" else 22)
    if name == "tensorrt":
        assert any("opset 22 -> 20" in note and "onnx-tensorrt" in note for note in result.notes)
        assert meta.target["opset"] == 20


def test_qnn_needs_the_normalisation_and_images_of_a_foreign_model(foreign_model, calib, folder):
    out = folder / "foreign" / "foreign_qnn.onnx"
    with pytest.raises(UsageError, match="calibration images"):
        build_for_target(foreign_model, "qnn", out, input_size=SIZE)
    with pytest.raises(CardError, match="normalisation"):
        build_for_target(foreign_model, "qnn", out, input_size=SIZE, calib=calib, calib_count=8)
    assert not out.exists()
    card = ModelCard.for_foreign_model("foreign", 3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    result = build_for_target(foreign_model, "qnn", out, input_size=SIZE, calib=calib, calib_count=8, card=card)
    assert result.opset == 22  # already past QNN's minimum of 21
    assert read_artefact_metadata(out).card == result.card and result.card is not None
    assert result.verification is not None and result.verification.argmax_agreement >= 0.98


# -- a model with operators targets cannot run ---------------------------------------------------
def _rows(result_or_checks) -> set[tuple[str, str]]:
    checks = getattr(result_or_checks, "checks", result_or_checks)
    return {(row.op_type, row.node) for report in checks for row in report.unsupported}


def test_the_table_names_what_nnapi_coreml_and_tensorrt_cannot_run(segnet_model, folder):
    out = folder / "segnet"
    built = {name: build_for_target(segnet_model, name, out / f"segnet_{name}{TARGETS[name].artefact_suffix}",
                                    input_size=SIZE) for name in ("nnapi", "coreml", "tensorrt", "cpu")}
    nnapi = built["nnapi"].checks[0]
    assert ("MaxUnpool", "dec_unpool") in _rows(built["nnapi"])
    # ORT expands Mish into Softplus, Tanh and Mul before partitioning; NNAPI has no Softplus.
    (softplus,) = [row for row in nnapi.unsupported if row.op_type == "Softplus"]
    assert "Mish" in softplus.reason
    assert nnapi.falling_back == 2 and nnapi.partitions == 3 and nnapi.supported == nnapi.nodes - 2
    assert _rows(built["coreml"]) == {("MaxUnpool", "dec_unpool")} and built["coreml"].checks[0].partitions == 2
    assert _rows(built["tensorrt"]) == {("MaxUnpool", "dec_unpool"), ("MaxPool", "enc_pool")}
    (pool,) = [r for r in built["tensorrt"].unsupported if r.node == "enc_pool"]
    assert "Indices" in pool.reason
    assert _rows(built["cpu"]) == set()  # ORT's CPU provider runs all of it (Mish inlined)
    for result in built.values():  # the fallback runs on ORT's CPU provider: still verified here
        assert result.verification is not None and result.verification.passed


def test_qnn_names_the_nodes_it_leaves_to_the_cpu(segnet_model, calib, folder):
    card = ModelCard.for_foreign_model("segnet", 3)
    result = build_for_target(segnet_model, "qnn", folder / "segnet" / "segnet_qnn.onnx", input_size=SIZE,
                              calib=calib, calib_count=8, card=card)
    rows = _rows(result)
    assert ("MaxUnpool", "dec_unpool") in rows and any(op == "Softplus" for op, _ in rows)
    assert result.checks[0].falling_back == len(rows) == 2


def test_openvino_refuses_before_writing_and_the_error_holds_the_table(segnet_model, folder):
    out = folder / "segnet" / "segnet_openvino.xml"
    seen = []
    with pytest.raises(TargetBuildError, match=r"MaxUnpool \(dec_unpool\)") as caught:
        build_for_target(segnet_model, "openvino", out, input_size=SIZE, on_checks=seen.append)
    assert ("MaxUnpool", "dec_unpool") in _rows(caught.value.checks)
    assert seen and seen[0] == caught.value.checks  # the CLI's table is printed before the refusal
    assert not out.exists() and not out.with_suffix(".bin").exists()


def test_an_operator_onnx_runtime_has_no_kernel_for_stops_the_cpu_target(folder):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["image"], ["a"], name="relu"),
         helper.make_node("Mystery", ["a"], ["logits"], name="mystery", domain="example.custom")],
        "custom", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 8, 8])])
    path = folder / "custom.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                      helper.make_opsetid("example.custom", 1)]), str(path))
    for name in ("cpu", "mobile"):
        with pytest.raises(TargetBuildError, match=r"example.custom:Mystery \(mystery\)") as caught:
            build_for_target(path, name, input_size=(8, 8))
        (report,) = caught.value.checks
        assert report.nodes == 2 and report.supported == 1 and report.fallback is None
        assert not default_output(path, name).exists()


# -- files -----------------------------------------------------------------------------------------
def test_the_input_is_never_an_output_and_suffixes_are_the_targets(zoo_model, folder):
    with pytest.raises(UsageError, match="is the input model of this run"):
        build_for_target(zoo_model, "cpu", zoo_model)
    with pytest.raises(UsageError, match="writes a .ort file"):
        build_for_target(zoo_model, "mobile", folder / "x.onnx")
    with pytest.raises(UsageError, match="precision int8, not fp16"):
        build_for_target(zoo_model, "qnn", folder / "x.onnx", precision="fp16")
    with pytest.raises(UsageError, match="not one the model takes"):
        build_for_target(zoo_model, "tensorrt", folder / "x.onnx", input_size=(60, 60))
    assert default_output(zoo_model, "openvino") == zoo_model.with_name("colournet_openvino.xml")


def test_nothing_is_left_behind_and_nothing_is_printed(zoo_model, calib, tmp_path, monkeypatch, capfd):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    out = tmp_path / "out" / "model.onnx"
    build_for_target(zoo_model, "qnn", out, input_size=SIZE, calib=calib, calib_count=8)
    build_for_target(zoo_model, "mobile", out.with_suffix(".ort"), input_size=SIZE)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert list(scratch.iterdir()) == []  # work folders removed
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "model.onnx", "model.ort", "model.required_operators.config"]  # no temporary files


def test_qnn_can_take_signed_symmetric_weights(zoo_model, calib, folder):
    result = build_for_target(zoo_model, "qnn", folder / "zoo" / "colournet_qnn_int8w.onnx", input_size=SIZE,
                              calib=calib, calib_count=8, weights="int8")
    model = onnx.load(str(result.path))
    inits = {i.name: i for i in model.graph.initializer}
    weights = [n for n in model.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0].endswith("weight_quantized")]
    assert {inits[n.input[0]].data_type for n in weights} == {TensorProto.INT8}
    assert all(not numpy_helper.to_array(inits[n.input[2]]).any() for n in weights)  # symmetric: zero points 0
    assert result.card is not None and result.card.calibration["weights"] == "int8"
    assert result.verification is not None and result.verification.passed
    with pytest.raises(UsageError, match="uint8 or int8 weights, not int4"):
        build_for_target(zoo_model, "qnn", folder / "x.onnx", calib=calib, weights="int4")
    with pytest.raises(UsageError, match="does not quantize"):
        build_for_target(zoo_model, "cpu", folder / "x.onnx", weights="int8")


def test_gpu_and_openvino_take_fp16(zoo_model, zoo_builds, folder):
    gpu = build_for_target(zoo_model, "gpu", folder / "zoo" / "colournet_gpu_fp16.onnx", precision="fp16")
    ops = {n.op_type for n in onnx.load(str(gpu.path)).graph.node}
    assert "Cast" in ops  # float32 in and out, fp16 inside
    ir = build_for_target(zoo_model, "openvino", folder / "zoo" / "colournet_openvino_fp16.xml", precision="fp16")
    fp32_bin = zoo_builds["openvino"].artefacts[1]
    assert ir.artefacts[1].stat().st_size < 0.6 * fp32_bin.stat().st_size  # weights stored in fp16
    for result in (gpu, ir):
        assert result.card is not None and str(result.card.precision) == "fp16"
        assert result.verification is not None and result.verification.preset == "fp16"
        assert result.verification.passed and result.verification.argmax_agreement >= 0.999


def test_fp32_targets_verify_on_the_users_images_when_given(zoo_model, calib, folder):
    result = build_for_target(zoo_model, "tensorrt", folder / "zoo" / "colournet_trt_calib.onnx", calib=calib)
    assert result.verification is not None and result.verification.parity.images == 8
    assert "calibration images" in result.verification.parity.source and result.verification.passed
    seen: list[str] = []
    build_for_target(zoo_model, "tensorrt", folder / "zoo" / "colournet_trt_images.onnx", images=calib,
                     progress=seen.append)
    assert seen[0] == "preparing the graph for tensorrt" and seen[-1] == "verifying the artefact against the fp32 file"


def test_rebuilding_replaces_every_file_of_an_artefact(zoo_model, tmp_path):
    out = tmp_path / "model.xml"
    first = build_for_target(zoo_model, "openvino", out)
    before = {p.name: p.read_bytes() for p in first.artefacts}
    second = build_for_target(zoo_model, "openvino", out, precision="fp16")
    assert [p.name for p in second.artefacts] == ["model.xml", "model.bin"]
    assert out.with_suffix(".bin").read_bytes() != before["model.bin"]
    assert read_artefact_metadata(out).card.precision == "fp16"  # type: ignore[union-attr]
