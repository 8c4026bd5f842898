"""Untrusted models are probed in a child process: crashes, hangs and memory blow-ups become errors."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtimes.errors import ModelFileError
from runtimes.guards.isolate import probe_model


@pytest.fixture
def good_model(tmp_path):
    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["logits"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [w],
    )
    path = tmp_path / "good.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    return path


def test_a_good_model_passes_the_probe(good_model):
    probe_model(good_model, timeout_s=60)


def test_a_broken_model_reports_the_childs_error(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x89PNG not a model")
    with pytest.raises(ModelFileError, match=r"bad.onnx: (not a valid ONNX|cannot load)") as info:
        probe_model(path, timeout_s=60)
    assert str(info.value).count(str(path)) == 1


def fake_python(tmp_path, body: str):
    """A stand-in interpreter for the child: the parent must survive whatever it does."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    "body, message",
    [
        ("kill -SEGV $$", r"crashed the runtime \(SIGSEGV\)"),
        ("kill -ABRT $$", r"ran out of memory \(SIGABRT\)"),
        ("sleep 30", r"did not finish within 1 s"),
        ("echo 'MemoryError' >&2; exit 1", r"ran out of memory while loading"),
    ],
)
def test_child_failures_become_errors(tmp_path, monkeypatch, good_model, body, message):
    monkeypatch.setattr("sys.executable", fake_python(tmp_path, body))
    with pytest.raises(ModelFileError, match=message):
        probe_model(good_model, timeout_s=1)


def test_memory_limit_is_enforced(good_model):
    # 64 MB of address space cannot even start Python with onnxruntime: the probe must say so.
    with pytest.raises(ModelFileError):
        probe_model(good_model, memory_mb=64, timeout_s=60)
