"""int8 for the runtime that runs it: `segedge quantize --for openvino` (NNCF, exporters/nncf_int8.py) on the
trained demo model: the IR and its card, accuracy on the held-out images measured on OpenVINO, the
Predictor on the IR, the runtime mismatch both ways, and the options NNCF cannot take."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtimes import Predictor
from runtimes.errors import ModelFileError
from runtimes.measure.parity import PRESETS, judge, measure_images
from runtimes.model.precision import Precision
from runtimes.backends.selection import RuntimeMismatchWarning
from segedge.data.labelled import labelled_pairs, read_pair

pytest.importorskip("nncf")

INT8_MIN_AGREEMENT = 0.98
INT8_MAX_MIOU_DROP = 1.0  # points, on the 100 held-out images


@pytest.fixture(scope="module")
def nncf_int8(demo_models, tmp_path_factory, cli):
    xml = tmp_path_factory.mktemp("nncf") / "demo_int8.xml"
    code, out, err = cli("quantize", demo_models.fp32, "--precision", "int8", "--for", "openvino",
                         "--calib", demo_models.data, "--data", demo_models.data, "-o", xml, "--json")
    assert code == 0, err
    return xml, json.loads(out)


@pytest.fixture(scope="module")
def cli():  # module-scoped: the quantization runs once for the module
    from segedge.cli import main

    return lambda *args: _run(main, args)


def _run(main, args):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def test_the_ir_and_its_card_say_what_it_is_for(nncf_int8):
    xml, result = nncf_int8
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    card = Predictor(xml, runtime="openvino").card
    assert card.precision is Precision.int8 and card.runtime == "openvino"
    facts = card.calibration
    assert facts["quantizer"] == "nncf" and facts["format"] == "OpenVINO IR" and facts["images"] == 32
    assert facts["quantized_convs"] == facts["convs"] > 10  # every convolution runs in int8
    assert card.parity["runtime"] == "openvino" and card.parity["passed"] is True
    assert result["passed"] is True and result["calibration"]["quantizer"] == "nncf"


def test_info_reads_the_ir_on_openvino(nncf_int8, cli):
    code, out, err = cli("info", nncf_int8[0])
    assert code == 0, err
    assert out.splitlines()[0].endswith(" MB  OpenVINO IR") and "runs on: OpenVINO CPU" in out
    assert "runs in int8: Convolution" in out


def test_accuracy_on_the_held_out_images_measured_on_openvino(nncf_int8):
    parity = Predictor(nncf_int8[0], runtime="openvino").card.parity
    assert parity["images"] == 100 and "labelled images" in parity["source"]
    assert parity["argmax_agreement"] >= INT8_MIN_AGREEMENT
    assert parity["miou_drop_points"] <= INT8_MAX_MIOU_DROP
    assert parity["miou"] >= 0.75


def test_the_openvino_predictor_on_the_ir_keeps_the_fp32_masks(demo_models, nncf_int8):
    fp32 = Predictor(demo_models.fp32)
    int8 = Predictor(nncf_int8[0], runtime="openvino")
    pairs = labelled_pairs(demo_models.data, 20)
    run32 = fp32.session.run
    parity = measure_images(run32, int8.session.run, fp32.card, (read_pair(i, m) for i, m in pairs), "20 held-out")
    assert not judge(parity, PRESETS[Precision.int8])
    assert parity.miou_drop_points is not None and parity.miou_drop_points <= INT8_MAX_MIOU_DROP
    image, _ = read_pair(*pairs[0])
    assert int8.predict(image).shape == image.shape[:2]


def test_bf16_keeps_a_trained_models_masks_within_the_fp16_preset(demo_models):
    fp32 = Predictor(demo_models.fp32)
    bf16 = Predictor(demo_models.fp32, runtime="openvino", openvino_hint="bf16")
    pairs = labelled_pairs(demo_models.data, 20)
    parity = measure_images(fp32.session.run, bf16.session.run, fp32.card, (read_pair(i, m) for i, m in pairs), "20")
    assert not judge(parity, PRESETS[Precision.fp16]), judge(parity, PRESETS[Precision.fp16])


def test_each_runtime_says_when_a_file_was_made_for_the_other(demo_models, nncf_int8):
    with pytest.raises(ModelFileError, match="OpenVINO IR.*--runtime openvino"):
        Predictor(nncf_int8[0], runtime="onnxruntime")
    with pytest.warns(RuntimeMismatchWarning, match="quantized for onnxruntime, not openvino.*--for openvino"):
        Predictor(demo_models.int8, runtime="openvino")


def test_predict_on_the_ir_and_the_mismatch_line(demo_models, nncf_int8, tmp_path, cli):
    pairs = labelled_pairs(demo_models.data, 2)
    folder = tmp_path / "images"
    folder.mkdir()
    for image, _ in pairs:
        (folder / image.name).write_bytes(image.read_bytes())
    code, _, err = cli("predict", nncf_int8[0], folder, "--runtime", "openvino", "-o", tmp_path / "masks")
    assert code == 0 and len(list((tmp_path / "masks").glob("*_mask.png"))) == 2, err
    code, _, err = cli("predict", nncf_int8[0], folder, "-o", tmp_path / "own")  # an IR runs on OpenVINO unasked
    assert code == 0 and err.count("warning:") == 0, err
    for mask in (tmp_path / "masks").glob("*_mask.png"):
        assert (tmp_path / "own" / mask.name).read_bytes() == mask.read_bytes()
    code, _, err = cli("predict", nncf_int8[0], folder, "--runtime", "onnxruntime", "-o", tmp_path / "ort")
    assert code == 1 and "is an OpenVINO IR" in err and not (tmp_path / "ort").exists()
    code, _, err = cli("predict", demo_models.int8, folder, "--runtime", "openvino", "-o", tmp_path / "m2")
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "quantized for onnxruntime" in lines[0]


def test_eval_runs_each_file_on_its_own_runtime(demo_models, nncf_int8, cli):
    code, out, err = cli("eval", demo_models.int8, nncf_int8[0], "--data", demo_models.data, "--limit", "20", "--json")
    assert code == 0 and "warning:" not in err, err
    qdq, ir = json.loads(out)["models"]
    # Two quantizers of one model, within two points of each other on 20 images: 0.0106 apart on an
    # AVX2-only EPYC, where ORT's file has 7-bit weights (no VNNI), under 0.01 on AVX-512 CPUs.
    assert qdq["images"] == ir["images"] == 20 and abs(qdq["miou"] - ir["miou"]) <= 0.02
    forced, = json.loads(cli("eval", nncf_int8[0], "--data", demo_models.data, "--limit", "20", "--runtime", "openvino",
                             "--json")[1])["models"]
    assert forced["miou"] == ir["miou"]


@pytest.mark.parametrize(("args", "message"), [
    (["--precision", "fp16", "--for", "openvino"], "--for openvino makes int8"),
    (["--precision", "int8", "--for", "openvino", "--debug"], "--debug .* --for onnxruntime"),
    (["--precision", "int8", "--for", "openvino", "--exclude", "no_such_node"], "--exclude: no node named no_such_node"),
    (["--precision", "int8", "--for", "openvino", "-o", "x.onnx"], "an IR .*name the output .xml"),
])
def test_what_nncf_cannot_take_is_one_line(demo_models, tmp_path, cli, args, message):
    args = [a if a != "x.onnx" else tmp_path / "x.onnx" for a in args]
    code, out, err = cli("quantize", demo_models.fp32, *args, "--calib", demo_models.data, "--calib-count", "2")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    import re

    assert re.search(message, err), err
    assert not np.any([p.suffix == ".xml" for p in tmp_path.iterdir()])
