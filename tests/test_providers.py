"""Execution providers: mapping and options, the no-silent-fallback check, node placement, CUDA for real."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from runtimes.backends import onnxruntime_providers as P
from runtimes.errors import ProviderError
from runtimes.model.node_placement import NodeRecord, check_strict, placement_from_records, read_profile
from runtimes.measure.profiling import profile_placement
from runtimes.backends.onnxruntime_providers import CPU, Provider, ProviderOptions
from runtimes.backends.onnxruntime_session import open_session, session_options
from segedge.cli import main

from .hostile import one_error_line

TINY = "tests/tiny_models.py:build"
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(scope="module")
def tiny_onnx(tiny_export):
    return tiny_export("32x32")


def test_every_provider_maps_to_an_ort_name():
    assert {p: p.ort_name for p in Provider if p is not Provider.auto} == {
        Provider.cpu: "CPUExecutionProvider",
        Provider.cuda: "CUDAExecutionProvider",
        Provider.tensorrt: "TensorrtExecutionProvider",
        Provider.openvino: "OpenVINOExecutionProvider",
        Provider.coreml: "CoreMLExecutionProvider",
        Provider.directml: "DmlExecutionProvider",
    }
    assert [p.value for p in Provider if p.on_gpu] == ["cuda", "tensorrt", "coreml", "directml"]


def test_provider_options():
    assert P.options_for(Provider.cuda, ProviderOptions(device_id=1)) == {"device_id": 1, "cudnn_conv_algo_search": "HEURISTIC"}
    trt = P.options_for(Provider.tensorrt, ProviderOptions(trt_fp16=True, trt_int8=True, trt_cache_dir="/tmp/engines"))
    assert trt["trt_fp16_enable"] and trt["trt_int8_enable"] and trt["trt_engine_cache_enable"]
    assert trt["trt_engine_cache_path"] == "/tmp/engines"
    assert "trt_engine_cache_enable" not in P.options_for(Provider.tensorrt, ProviderOptions())
    assert P.options_for(Provider.openvino, ProviderOptions(openvino_device="GPU", openvino_precision="FP16")) == {
        "device_type": "GPU", "precision": "FP16"}
    bf16 = P.options_for(Provider.openvino, ProviderOptions(openvino_hint="bf16"))
    assert bf16 == {"device_type": "CPU", "load_config": '{"CPU": {"INFERENCE_PRECISION_HINT": "bf16"}}'}
    assert P.options_for(Provider.cuda, ProviderOptions(extra={"gpu_mem_limit": 1 << 30}))["gpu_mem_limit"] == 1 << 30
    assert P.options_for(Provider.cpu, ProviderOptions()) == {}


def test_chain_puts_cpu_last(monkeypatch):
    assert P.provider_chain(Provider.cpu) == [(CPU, {})]
    monkeypatch.setattr(P, "available", lambda: ["CUDAExecutionProvider", CPU])
    chain = P.provider_chain(Provider.cuda, ProviderOptions(device_id=2))
    assert [name for name, _ in chain] == ["CUDAExecutionProvider", CPU] and chain[0][1]["device_id"] == 2


def test_unavailable_provider_names_the_wheel(monkeypatch):
    monkeypatch.setattr(P, "available", lambda: [CPU])
    with pytest.raises(ProviderError) as info:
        P.provider_chain(Provider.cuda)
    message = str(info.value)
    assert "\n" not in message and "cuda provider requested" in message and "onnxruntime-gpu" in message
    assert "onnxruntime" in message and "CPUExecutionProvider" in message
    with pytest.raises(ProviderError, match="onnxruntime-openvino"):
        P.provider_chain(Provider.openvino)
    with pytest.raises(ProviderError, match="unknown provider 'gpu'"):
        P.resolve("gpu")


def test_several_ort_builds_are_named(monkeypatch):
    monkeypatch.setattr(P, "available", lambda: [CPU])
    monkeypatch.setattr(P, "installed_ort_distributions", lambda: {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.32.0"})
    assert "keep only onnxruntime-gpu" in P.missing_provider_message(Provider.cuda)


def test_auto_says_what_it_chose(monkeypatch):
    monkeypatch.setattr(P, "available", lambda: ["CUDAExecutionProvider", "OpenVINOExecutionProvider", CPU])
    monkeypatch.setattr(P, "has_nvidia_device", lambda: True)
    assert P.explain("auto").provider is Provider.cuda
    monkeypatch.setattr(P, "has_nvidia_device", lambda: False)  # onnxruntime-gpu on a machine without a GPU
    chosen = P.explain("auto")
    assert chosen.provider is Provider.openvino and "cuda" in chosen.reason
    monkeypatch.setattr(P, "available", lambda: [CPU])
    assert P.explain(Provider.auto).provider is Provider.cpu
    assert P.explain("cpu").reason == "requested"


class _FakeSession:
    def get_providers(self):
        return [CPU]


def test_inactive_provider_names_the_missing_device(monkeypatch):
    monkeypatch.setattr(P, "has_nvidia_device", lambda: False)
    with pytest.raises(ProviderError) as info:
        P.check_active(_FakeSession(), Provider.cuda)
    assert "cuda provider did not start (active: CPUExecutionProvider)" in str(info.value)
    assert "no NVIDIA GPU" in str(info.value)


def test_inactive_provider_names_the_missing_libraries(monkeypatch):
    monkeypatch.setattr(P, "has_nvidia_device", lambda: True)
    monkeypatch.setattr(P, "missing_cuda_libraries", lambda with_tensorrt=False: ["libcudnn.so.9"])
    with pytest.raises(ProviderError, match="cannot load libcudnn.so.9"):
        P.check_active(_FakeSession(), Provider.cuda)
    assert P.check_active(_FakeSession(), Provider.cpu) == [CPU]


@pytest.mark.parametrize("provider", ["cuda", "tensorrt", "directml"])
def test_cli_unavailable_provider_is_exit_1_and_one_line(capsys, tiny_onnx, provider):
    if P.Provider(provider).ort_name in ort.get_available_providers():
        pytest.skip(f"{provider} is available here")
    code = main(["bench", str(tiny_onnx), "--provider", provider, "--no-torch"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and f"{provider} provider" in line


def test_assignment_counts_nodes_without_running(tiny_onnx):
    session = open_session(tiny_onnx, "cpu", 1)
    placement = session.placement()
    assert placement is not None and placement.source == "assignment"
    assert set(placement.nodes) == {CPU} and placement.nodes[CPU] >= 3
    assert placement.op_types[CPU]["Conv"] == 3 and placement.fallback == ()


def test_profile_reads_provider_time_and_shapes(tiny_onnx, tmp_path):
    x = np.zeros((1, 3, 32, 32), np.float32)
    placement = profile_placement(tiny_onnx, "cpu", x, threads=1, runs=2)
    assert placement.source == "profile" and placement.nodes[CPU] >= 3
    assert placement.time_ms[CPU] > 0 and "CPUExecutionProvider" in placement.summary()
    opts = session_options(1)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "p")
    session = open_session(tiny_onnx, "cpu", 1, sess_options=opts)
    session.run(x)
    records = read_profile(session.session.end_profiling())
    convs = [r for r in records if r.op_type == "Conv"]
    assert convs and all(r.provider == CPU and not r.shape_work and r.time_us > 0 for r in convs)
    assert all(r.shape_work for r in records if r.op_type == "Shape")


def test_strict_counts_tensor_work_on_the_cpu_not_shape_work():
    records = [
        NodeRecord("conv1", "Conv", "CUDAExecutionProvider", 900.0, (("float", (1, 64, 128, 128)),)),
        NodeRecord("shape", "Shape", CPU, 2.0, (("int64", (4,)),)),
        NodeRecord("gather", "Gather", CPU, 1.0, (("int64", ()),)),
        NodeRecord("resize", "Resize", CPU, 100.0, (("float", (1, 21, 512, 512)),)),
    ]
    placement = placement_from_records(records, Provider.cuda)
    assert placement.nodes == {"CUDAExecutionProvider": 1, CPU: 3}
    assert placement.fallback == ("resize (Resize)",)
    assert placement.time_ms["CUDAExecutionProvider"] == pytest.approx(0.9)
    with pytest.raises(ProviderError, match=r"--strict: 1 nodes ran on the CPU instead of cuda, 0.10 ms per run: resize \(Resize\)"):
        check_strict(placement, Provider.cuda)
    check_strict(placement_from_records(records[1:3], Provider.cuda), Provider.cuda)  # shape work only
    check_strict(placement_from_records(records, Provider.cpu), Provider.cpu)


def test_session_without_the_assignment_record_says_none(tiny_onnx):
    opts = ort.SessionOptions()  # a caller's own options, without the record
    session = open_session(tiny_onnx, "cpu", 1, sess_options=opts)
    assert session.placement() is None


requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu with CUDAExecutionProvider")


@pytest.mark.cuda
@requires_cuda
def test_cuda_session_runs_on_the_gpu(tiny_onnx):
    if not P.has_nvidia_device():
        pytest.skip("no NVIDIA device")
    session = open_session(tiny_onnx, "cuda", 1)
    assert session.active_providers[0] == "CUDAExecutionProvider"
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    cpu = open_session(tiny_onnx, "cpu", 1).run(x)
    np.testing.assert_allclose(session.run(x), cpu, atol=1e-3)
    placement = profile_placement(tiny_onnx, "cuda", x, threads=1)
    assert placement.nodes.get("CUDAExecutionProvider", 0) >= 3
    check_strict(placement, Provider.cuda)  # the tiny net's convs and resize all have CUDA kernels
