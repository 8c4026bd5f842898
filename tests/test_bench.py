"""The benchmark harness: interleaving, failed rows, IO binding, peers in one run, machine record, CUDA."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnxruntime as ort
import pytest

from runtimes.backends import RuntimeSpec
from runtimes.measure.timing import FailedRun, Runner, ort_runner, time_runners
from runtimes.measure.machine import machine_record, usable_cpus
from runtimes.backends.onnxruntime_session import BRIEF_SPIN_US, brief_spin_entries, open_session
from segedge.bench import BenchRequest, Peer, run_bench
from segedge.cli import main

from .hostile import one_error_line

TINY = "tests/tiny_models.py:build"
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


@pytest.fixture(scope="module")
def tiny_onnx(tiny_export):
    return tiny_export("32x40")


def test_rounds_are_interleaved_and_failures_become_rows():
    calls = []

    def runner(name, fail_at=None):
        def run(x):
            calls.append(name)
            if fail_at is not None and calls.count(name) == fail_at:
                raise RuntimeError("boom\nsecond line")
            return x
        return Runner(name, "test", "cpu", run, tags={"runtime": name})

    runners = [runner("a"), FailedRun("never", "test", "cpu", "not installed"), runner("b"), runner("c", fail_at=4)]
    rows = time_runners(runners, lambda r: np.zeros(1), batch=2, warmup=1, runs=3)
    assert [r.name for r in rows] == ["a", "never", "b", "c"]
    a, never, b, c = rows
    assert a.ok and b.ok and not never.ok and not c.ok
    assert c.reason == "RuntimeError: boom second line" and c.tags == {"runtime": "c"}
    # first + warm-up for each runner, then rounds a b c a b (c failed in round 2, and left).
    assert calls[6:] == ["a", "b", "c", "a", "b", "c", "a", "b"]
    assert a.runs == 3 and a.batch == 2 and a.p50_ms <= a.p99_ms and a.throughput > 0
    assert json.loads(json.dumps(never.to_dict()))["status"] == "failed"


def test_io_binding_runner_matches_plain_run(tiny_onnx):
    session = open_session(tiny_onnx, "cpu", 1)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 40)).astype(np.float32)
    bound = ort_runner(session, 0.0, io_binding=True)
    binding = bound.run(bound.prepare(x))
    np.testing.assert_array_equal(binding.copy_outputs_to_cpu()[0], session.run(x))
    assert "host copies excluded" in bound.notes[0] and bound.tags["precision"] == "fp32"


def test_sessions_timed_beside_peers_spin_only_briefly(tiny_onnx):
    key = "session.intra_op.spin_duration_us"
    brief = open_session(tiny_onnx, "cpu", 1, spinning=False)
    default = open_session(tiny_onnx, "cpu", 1)
    assert brief.session.get_session_options().get_session_config_entry(key) == str(BRIEF_SPIN_US)
    with pytest.raises(RuntimeError, match="does not have configuration"):  # unset: ORT's default, a long spin
        default.session.get_session_options().get_session_config_entry(key)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 40)).astype(np.float32)
    np.testing.assert_array_equal(brief.run(x), default.run(x))


def test_an_onnx_runtime_without_a_spin_bound_parks_its_threads_at_once():
    # ORT before 1.26 ignores spin_duration_us (and would spin long): its threads park instead.
    assert brief_spin_entries("1.25.1") == {"session.intra_op.allow_spinning": "0"}
    assert brief_spin_entries("1.26.0")["session.intra_op.spin_duration_us"] == str(BRIEF_SPIN_US)
    assert brief_spin_entries("2.0.0.dev20261201")["session.intra_op.spin_duration_us"] == str(BRIEF_SPIN_US)


def test_bench_with_peers_in_one_run(tiny_onnx):
    request = BenchRequest(target=str(tiny_onnx), compare=(Peer.openvino,), warmup=1, runs=3, spec=RuntimeSpec(threads=1),
                           profile=True)
    result = run_bench(request)
    names = [r.name for r in result.rows]
    assert names == ["onnxruntime fp32", "pytorch eager fp32", "openvino"]
    assert result.rows[0].ok and result.rows[1].ok and result.threads == 1
    if HAS_OPENVINO:
        ov = result.rows[2]
        assert ov.ok and "1 threads" in ov.notes[0] and ov.setup_s > 0
    else:
        assert "segedge[openvino]" in result.rows[2].reason
    data = result.to_dict()
    assert data["placement"]["source"] == "profile" and data["placement"]["nodes"]["CPUExecutionProvider"] >= 3
    assert data["provider"] == "cpu" and data["provider_reason"] == "requested"
    for row in data["rows"]:
        if row["status"] == "ok":
            assert {"p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "throughput", "memory_mb",
                    "first_run_ms", "setup_s"} <= set(row)


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino not installed")
def test_openvino_runtime_agrees_with_onnxruntime(tiny_onnx):
    from runtimes.backends.openvino_timing import openvino_runner

    x = np.random.default_rng(1).standard_normal((1, 3, 32, 40)).astype(np.float32)
    runner = openvino_runner(tiny_onnx, x.shape, threads=1, precision_hint="f32")
    expected = open_session(tiny_onnx, "cpu", 1).run(x)
    np.testing.assert_allclose(runner.run(x), expected, atol=1e-4)
    assert "precision f32" in runner.notes[0]


def test_torch_compile_failure_is_a_row(tiny_onnx, monkeypatch):
    import torch

    def broken(*args, **kwargs):
        raise RuntimeError("inductor needs a C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    result = run_bench(BenchRequest(target=str(tiny_onnx), torch_baseline=False, compare=(Peer.compile,), warmup=0, runs=2))
    failed = result.rows[1]
    assert not failed.ok and failed.runtime == "torch.compile" and "inductor needs a C++ compiler" in failed.reason


def test_cli_bench_compare_and_strict_on_cpu(capsys, tiny_onnx):
    code = main(["bench", str(tiny_onnx), "--no-torch", "--strict", "--runs", "2", "--warmup", "0", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["placement"]["fallback_nodes"] == []
    code = main(["bench", str(tiny_onnx), "--compare", "torch,tflite"])
    assert code == 2 and "unknown peer 'tflite'" in one_error_line(capsys.readouterr().err)


def test_auto_says_which_provider(capsys, tiny_onnx):
    code = main(["bench", str(tiny_onnx), "--provider", "auto", "--no-torch", "--runs", "1", "--warmup", "0", "--json"])
    captured = capsys.readouterr()
    assert code == 0 and "auto chose the" in captured.err
    assert json.loads(captured.out)["provider"] in ("cpu", "cuda", "openvino", "coreml", "directml")


def test_machine_record():
    record = machine_record(threads=1)
    cpu = record["cpu"]
    assert record["threads_used"] == 1 and 1 <= cpu["usable_cpus"] == usable_cpus() <= (cpu["logical_cores"] or 1)
    assert set(cpu["flags"]) <= {"fma", "f16c", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                 "amx_tile", "amx_bf16", "amx_int8", "amx_fp16"}
    assert "onnxruntime" in record["versions"] and isinstance(record["gpus"], list)
    if cpu["affinity"] is not None:
        assert cpu["usable_cpus"] <= len(cpu["affinity"])


@pytest.mark.cuda
@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(), reason="needs onnxruntime-gpu")
def test_cuda_bench_with_io_binding_and_torch_on_the_gpu(tiny_onnx):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    result = run_bench(BenchRequest(target=str(tiny_onnx), spec=RuntimeSpec(provider="cuda"), io_binding=True, warmup=2, runs=10, strict=True))
    ort_row, torch_row = result.rows
    assert ort_row.ok and torch_row.ok and torch_row.provider == "cuda"
    assert result.active_providers[0] == "CUDAExecutionProvider" and torch_row.gpu_memory_mb > 0
    assert result.machine["gpus"] and result.placement.nodes.get("CUDAExecutionProvider", 0) >= 3


def test_ort_cpu_peer_needs_no_torch(capsys, tiny_onnx):
    code = main(["bench", str(tiny_onnx), "--no-torch", "--compare", "ort-cpu", "--runs", "2", "--warmup", "0", "--json"])
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert code == 0 and [r["name"] for r in rows] == ["onnxruntime fp32", "onnxruntime cpu"]
    assert all(r["status"] == "ok" and r["provider"] == "CPUExecutionProvider" for r in rows)
