"""`segedge export --target` and `segedge info` on the artefacts, through the CLI (issue 18).

The library (exporters.targets) is tested target by target in tests/test_targets.py; here: a zoo-like
user model and a foreign ONNX file go through the verb, the table of what would not run is printed
before anything is written, the artefacts carry their card and target record, `info` reads them.
"""

from __future__ import annotations

import json

import pytest

from segedge.data import ShapesConfig, write_shapes_dataset
from tests.hostile import files_under, one_error_line
from tests.target_models import write_segnet_model

TINY = "tests/tiny_models.py:build"


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    return write_shapes_dataset(tmp_path_factory.mktemp("calib"), ShapesConfig(train=8, val=0, size=(64, 64))) / "JPEGImages"


def test_mobile_target_writes_ort_format_that_info_reads(cli, tmp_path):
    out = tmp_path / "tiny_mobile.ort"
    code, stdout, err = cli("export", TINY, "--target", "mobile", "--input-size", "64x64", "-o", out, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["passed"] and result["target"]["artefacts"] == [str(out), str(out.with_suffix(".required_operators.config"))]
    assert result["target"]["verification"]["argmax_agreement"] == 1.0
    assert sorted(files_under(tmp_path)) == ["tiny_mobile.ort", "tiny_mobile.required_operators.config"]
    code, stdout, _ = cli("info", out)
    assert code == 0 and "made for target mobile" in stdout and "takes: dynamic input" in stdout
    assert " MB  ORT format  (pytorch)" in stdout.splitlines()[0]  # a flatbuffer: no opset imports to read


def test_qnn_target_from_a_foreign_file_is_static_and_verified(cli, tmp_path, calib, tiny_export):
    import onnx

    proto = onnx.load(str(tiny_export("64x64")))
    del proto.metadata_props[:]  # exported elsewhere: no card
    bare = tmp_path / "theirs.onnx"
    onnx.save(proto, str(bare))
    code, stdout, err = cli("export", bare, "--target", "qnn", "--input-size", "64x64", "--calib", calib, "--json",
                            "--classes", "dark,red,green,blue")
    assert code == 0, err
    result = json.loads(stdout)["target"]
    assert result["artefacts"] == [str(tmp_path / "theirs_qnn.onnx")] and result["input_shape"] == [1, 3, 64, 64]
    assert result["precision"] == "int8" and result["verification"]["argmax_agreement"] >= 0.98
    code, stdout, _ = cli("info", tmp_path / "theirs_qnn.onnx")
    assert code == 0 and "made for target qnn" in stdout and "static input 64 x 64 only" in stdout
    assert "classes        dark, red, green, blue  (card)" in stdout


def test_the_table_names_what_the_target_cannot_run(cli, tmp_path):
    segnet = write_segnet_model(tmp_path / "segnet.onnx")
    code, stdout, err = cli("export", segnet, "--target", "tensorrt", "--input-size", "64x64")
    assert code == 0, err
    assert "would not run on the target" in stdout and "dec_unpool" in stdout and "MaxUnpool" in stdout
    assert "enc_pool" in stdout and "nodes supported" in err


def test_a_target_that_cannot_fall_back_refuses_before_writing(cli, tmp_path):
    segnet = write_segnet_model(tmp_path / "segnet.onnx")
    before = files_under(tmp_path)
    code, stdout, err = cli("export", segnet, "--target", "openvino", "--input-size", "64x64")
    assert code == 1 and "dec_unpool" in stdout  # the table, printed before the refusal
    line = one_error_line(err.split("\n", err.count("\n") - 1)[-1] if err.count("\n") > 1 else err)
    assert "nothing written" in line and "MaxUnpool" in line
    assert files_under(tmp_path) == before


def test_an_onnx_file_needs_a_target(cli, tmp_path, tiny_export):
    code, _, err = cli("export", tiny_export("64x64"))
    assert code == 2 and "give --target" in one_error_line(err)
