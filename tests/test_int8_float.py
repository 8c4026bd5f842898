"""Issue 16: what int8 keeps in float for a transformer (LayerNorm, Softmax, GELU, attention's MatMuls),
on ONNX Runtime's quantizer and NNCF's, and that a convolutional network keeps nothing back."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from PIL import Image

from exporters.int8 import quantize_int8
from exporters.int8_float import attention_matmuls, float_compute, has_attention, int8_compute
from runtimes.backends.onnxruntime_session import open_session

SEGFORMER_ATTENTION_MATMULS = 16  # 8 blocks (2 per stage), each Q K^T and softmax(.) V


@pytest.fixture(scope="module")
def segformer(tmp_path_factory, cli_module):
    folder = tmp_path_factory.mktemp("segformer_int8")
    path = folder / "segformer_b0.onnx"
    code, _, err = cli_module("export", "segformer_b0", "--num-classes", "3", "--input-size", "64x64",
                              "--exporter", "torchscript", "-o", path)
    assert code == 0, err
    calib = folder / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(calib / f"{i}.png")
    return path, calib


@pytest.fixture(scope="module")
def cli_module():
    from segedge.cli import main

    def run(*args):
        return main([str(a) for a in args]), "", ""

    return run


def test_the_attention_matmuls_are_the_ones_without_a_weight(segformer):
    model = onnx.load(str(segformer[0]))
    ops = Counter(n.op_type for n in model.graph.node)
    assert len(attention_matmuls(model)) == SEGFORMER_ATTENTION_MATMULS < ops["MatMul"]
    assert has_attention(model)


def test_ort_int8_keeps_the_transformer_ops_in_float(segformer, tmp_path, cli):
    source, calib = segformer
    fp32 = onnx.load(str(source))
    ops = Counter(n.op_type for n in fp32.graph.node)
    result = quantize_int8(source, tmp_path / "int8.onnx", calib, count=4)
    facts = result.card.calibration
    assert facts["transformer_float"] is True
    assert facts["float_ops"] == {"Erf": ops["Erf"], "LayerNormalization": ops["LayerNormalization"],
                                  "MatMul": SEGFORMER_ATTENTION_MATMULS, "Softmax": ops["Softmax"]}
    linears = ops["MatMul"] + ops["Gemm"] - SEGFORMER_ATTENTION_MATMULS  # the 2-D ones export as Gemm
    assert set(facts["int8_ops"]) == {"Conv", "Gemm", "MatMul"} and facts["int8_ops"]["Conv"] == ops["Conv"]
    assert facts["int8_ops"]["MatMul"] + facts["int8_ops"]["Gemm"] == linears
    quantized = onnx.load(str(tmp_path / "int8.onnx"))
    assert (float_compute(quantized), int8_compute(quantized)) == (facts["float_ops"], facts["int8_ops"])
    code, out, _ = cli("info", tmp_path / "int8.onnx")
    assert code == 0 and "stays float: Erf 8, LayerNormalization" in out and "runs in int8: Conv 20" in out
    out = open_session(tmp_path / "int8.onnx").run(np.zeros((1, 3, 64, 96), np.float32))
    assert out.shape == (1, 3, 64, 96) and np.isfinite(out).all()

    everything = quantize_int8(source, tmp_path / "all.onnx", calib, count=4, transformer_float=False).card.calibration
    assert everything["transformer_float"] is False
    assert everything["int8_ops"]["MatMul"] + everything["int8_ops"]["Gemm"] == ops["MatMul"] + ops["Gemm"]
    assert everything["int8_ops"]["LayerNormalization"] == ops["LayerNormalization"]
    assert everything["float_ops"] == {"Erf": ops["Erf"]}  # ORT has no int8 Erf


def test_a_convolutional_network_keeps_nothing_in_float(tiny_export, tmp_path):
    source = tiny_export("32x32")
    calib = tmp_path / "calib"
    calib.mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(calib / "a.png")
    facts = quantize_int8(source, tmp_path / "int8.onnx", calib, count=1).card.calibration
    assert facts["transformer_float"] is False and facts["float_ops"] == {} and facts["int8_ops"] == {"Conv": 3}


def test_nncf_quantizes_a_transformer_as_one(segformer, tmp_path):
    pytest.importorskip("nncf")
    from exporters.nncf_int8 import quantize_nncf

    source, calib = segformer
    card = open_session(source).card
    facts = quantize_nncf(source, tmp_path / "int8.xml", calib, card=card, count=4).calibration
    assert facts["model_type"] == "transformer"
    # LayerNorm (MVN in OpenVINO), Softmax and GELU stay float; the convolutions and the Linears' MatMuls run in int8.
    assert {"MVN", "Softmax"} <= set(facts["float_ops"]) and facts["int8_ops"]["MatMul"] >= 8 * 4
    assert facts["int8_ops"]["Convolution"] >= 1
