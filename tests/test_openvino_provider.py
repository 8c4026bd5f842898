"""ONNX Runtime's OpenVINO execution provider, for real: the Predictor and `segedge bench` on it.

Needs `onnxruntime-openvino` in place of `onnxruntime` (they cannot share a venv), so it skips in
the main test venv. This module imports neither torch nor segedge's exporters: it runs in a
runtime-only venv holding onnxruntime-openvino, onnx and pytest:

    python -m venv .venv-ovep && .venv-ovep/bin/pip install onnxruntime-openvino onnx numpy psutil Pillow "typer>=0.29,<1" rich pytest
    PYTHONPATH=. .venv-ovep/bin/python -m pytest tests/test_openvino_provider.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

pytestmark = pytest.mark.skipif("OpenVINOExecutionProvider" not in ort.get_available_providers(),
                                reason="needs onnxruntime-openvino")
ROOT = Path(__file__).resolve().parents[1]
CLASSES = 3


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory) -> Path:
    """Two 3x3 convolutions with a ReLU between: N x 3 x H x W -> N x 3 x H x W logits, no card."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((CLASSES, 8, 3, 3)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["image", "w1"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["logits"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES, "H", "W"])], [w1, w2])
    path = tmp_path_factory.mktemp("ovep") / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def test_predictor_runs_on_the_openvino_provider(conv_model):
    from runtimes import Predictor

    card = {"classes": tuple(f"c{i}" for i in range(CLASSES)), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    on_cpu = Predictor(conv_model, "cpu", threads=1, **card)
    on_openvino = Predictor(conv_model, "openvino", threads=1, **card)
    assert on_openvino.session.active_providers[0] == "OpenVINOExecutionProvider"
    image = np.random.default_rng(1).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    expected, got = on_cpu.predict_proba(image), on_openvino.predict_proba(image)
    assert got.shape == expected.shape == (CLASSES, 37, 45)
    assert np.abs(got - expected).max() < 1e-2  # OpenVINO may pick other kernels (or bf16 where the CPU has it)
    assert (on_openvino.predict(image) == on_cpu.predict(image)).mean() >= 0.99


def test_bench_on_the_openvino_provider_names_it(conv_model):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "segedge", "bench", str(conv_model), "--provider", "openvino",
                           "--compare", "ort-cpu", "--no-torch", "--input-size", "32x32", "--runs", "3", "--warmup", "1",
                           "--threads", "1", "--json"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["provider"] == "openvino" and result["active_providers"][0] == "OpenVINOExecutionProvider"
    assert [r["status"] for r in result["rows"]] == ["ok", "ok"] and result["rows"][1]["provider"] == "CPUExecutionProvider"
