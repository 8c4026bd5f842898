"""Hostile and broken ONNX files: each is refused with one typed error, at the library and the CLI."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtimes.errors import ModelFileError
from runtimes.model.external_data import check_external_data
from runtimes.backends.onnxruntime_session import open_session
from segedge.cli import main


def conv_model(input_shape=("N", 3, "H", "W"), elem=TensorProto.FLOAT, opset=18, ir=None, op="Conv") -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    node = helper.make_node(op, ["image", "w"] if op == "Conv" else ["image"], ["logits"])
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("image", elem, list(input_shape))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if ir is not None:
        model.ir_version = ir
    return model


def externalise(model: onnx.ModelProto, location: str, length: int = 24, offset: int = 0) -> onnx.ModelProto:
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    del tensor.float_data[:]
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        tensor.external_data.add(key=key, value=value)
    return model


def save(model: onnx.ModelProto, path) -> str:
    # onnx.save would try to follow the external references; write the bytes ourselves.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return str(path)


def test_a_good_model_opens(tmp_path):
    session = open_session(save(conv_model(), tmp_path / "ok.onnx"))
    out = session.run(np.ones((1, 3, 4, 5), np.float32))
    assert out.shape == (1, 2, 4, 5) and np.allclose(out, 3.0)


def test_a_good_external_data_model_opens(tmp_path):
    np.ones(6, np.float32).tofile(tmp_path / "weights.bin")
    path = save(externalise(conv_model(), "weights.bin"), tmp_path / "ext.onnx")
    assert [r.location for r in check_external_data(path)] == ["weights.bin"]
    assert np.allclose(open_session(path).run(np.ones((1, 3, 2, 2), np.float32)), 3.0)


def hostile_files(tmp_path):
    secret = tmp_path / "secret.bin"
    np.ones(6, np.float32).tofile(secret)
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    os.symlink(secret, model_dir / "link.bin")
    (model_dir / "short.bin").write_bytes(b"\0" * 8)
    cases = {
        "random bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "cannot load|not a valid ONNX"),
        "empty": (lambda p: p.write_bytes(b""), "empty"),
        "truncated": (lambda p: p.write_bytes(conv_model().SerializeToString()[:40]), "not a valid ONNX|cannot load"),
        "png renamed": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64), "not a valid ONNX|cannot load"),
        "rank 3 input": (lambda p: save(conv_model(("N", 3, "H"), op="Relu"), p), "rank 3"),
        "int input": (lambda p: save(conv_model(elem=TensorProto.INT64), p), "tensor\\(int64\\)"),
        "2^40 dimension": (lambda p: save(conv_model((1, 3, 1 << 40, 8)), p), "declares a dimension"),
        "opset from the future": (lambda p: save(conv_model(opset=99), p), "cannot load"),
        "IR from the future": (lambda p: save(conv_model(ir=99), p), "cannot load"),
        "external ../": (lambda p: save(externalise(conv_model(), "../secret.bin"), p), "outside the model's folder"),
        "external absolute": (lambda p: save(externalise(conv_model(), str(secret)), p), "outside the model's folder"),
        "external symlink": (lambda p: save(externalise(conv_model(), "link.bin"), p), "resolves outside"),
        "external missing": (lambda p: save(externalise(conv_model(), "nothere.bin"), p), "is missing"),
        "external short": (lambda p: save(externalise(conv_model(), "short.bin"), p), "shorter than declared"),
    }
    return model_dir, cases


CASES = [
    "random bytes", "empty", "truncated", "png renamed", "rank 3 input", "int input", "2^40 dimension",
    "opset from the future", "IR from the future", "external ../", "external absolute", "external symlink",
    "external missing", "external short",
]


@pytest.mark.parametrize("case", CASES)
def test_hostile_model_is_one_typed_error(tmp_path, capsys, case):
    model_dir, cases = hostile_files(tmp_path)
    make, message = cases[case]
    path = model_dir / "model.onnx"
    make(path)
    with pytest.raises(ModelFileError, match=message):
        open_session(path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for verb in (["info", str(path)], ["bench", str(path), "--no-torch", "--input-size", "8x8", "--runs", "1"]):
        assert main(verb) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("segedge: error: ") and "Traceback" not in err[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_multi_input_graph_is_refused(tmp_path):
    model = conv_model()
    model.graph.input.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1]))
    with pytest.raises(ModelFileError, match="takes 2 \\(image, mask\\)"):
        open_session(save(model, tmp_path / "two.onnx"))


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(ModelFileError, match="not a file"):
        open_session(tmp_path)
