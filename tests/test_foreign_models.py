"""Models exported elsewhere (no segedge card) through every verb: info, predict, bench, verify, quantize, eval.

The files come from `torch.onnx.export` as other projects call it (tests/foreign_models.py). What
segedge must read or learn: the layout, the static size, the output kind (sigmoid probability,
label map), the size divisor a model needs (the detection-style network fails at sides that are
not multiples of 32). Library-made files (smp, Hugging Face, torchvision) are in
tests/test_foreign_libraries.py.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from PIL import Image

from runtimes import Predictor
from runtimes.errors import CardError
from runtimes.imaging.preprocess import normalize
from segedge.data import ShapesConfig, write_shapes_dataset
from tests.foreign_models import CLASSES, build_foreign_models
from tests.hostile import one_error_line
from tests.predictor_models import scene

HALF = ("--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    return build_foreign_models(tmp_path_factory.mktemp("foreign"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Images of awkward sizes: not multiples of 32, one pixel, and a 16-bit PNG."""
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(scene(400, 600, 1)).save(folder / "a.png")
    Image.fromarray(scene(77, 45, 2)).save(folder / "b.jpg", quality=95)
    Image.fromarray(scene(1, 1, 3)).save(folder / "c.png")
    sixteen = (scene(50, 70, 4).astype(np.uint16) * 257)[:, :, 0]
    Image.fromarray(sixteen).save(folder / "d.png")  # mode I;16
    return folder


def _direct(path, x_nchw: np.ndarray) -> np.ndarray:
    """The model run by plain ONNX Runtime, as its own project would feed it."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x_nchw})[0]


def test_info_says_what_it_read_and_inferred(cli, foreign):
    code, out, _ = cli("info", foreign["det"], *HALF, "--json")
    facts = {f["name"]: (f["value"], f["source"]) for f in json.loads(out)["facts"]}
    assert code == 0 and json.loads(out)["card"] is None  # no stored card
    assert facts["output_kind"] == ("sigmoid", "graph") and facts["size_divisor"] == (32, "probe")
    assert facts["layout"] == ("NCHW", "graph") and facts["mean"] == ([0.5, 0.5, 0.5], "option")
    code, out, _ = cli("info", foreign["nhwc"], "--json")
    facts = {f["name"]: (f["value"], f["source"]) for f in json.loads(out)["facts"]}
    assert facts["layout"] == ("NHWC", "graph") and len(facts["classes"][0]) == CLASSES
    code, out, _ = cli("info", foreign["static"])
    assert code == 0 and "input_size     96, 128  (graph)" in out and "dynamic        False  (graph)" in out


def test_names_print_verbatim(cli, tmp_path, foreign):
    model = onnx.load(str(foreign["static"]))
    for value in (*model.graph.input, *model.graph.output):
        old, value.name = value.name, f"[bold]{value.name}[x:1]"
        for node in model.graph.node:
            node.input[:] = [value.name if i == old else i for i in node.input]
            node.output[:] = [value.name if o == old else o for o in node.output]
    onnx.save(model, str(tmp_path / "brackets.onnx"))
    code, out, _ = cli("info", tmp_path / "brackets.onnx")
    assert code == 0 and "[bold]x[x:1]: tensor(float) [1x3x96x128]" in out


def test_det_model_predicts_any_size_with_its_divisor_learned(cli, tmp_path, foreign, photos):
    code, _, err = cli("predict", foreign["det"], photos, "-o", tmp_path / "masks", *HALF)
    assert code == 0, err
    assert "onnxruntime" not in err.lower() and "Attempting to broadcast" not in err  # no runtime log spew
    for name, size in (("a", (600, 400)), ("b", (45, 77)), ("c", (1, 1)), ("d", (70, 50))):
        mask = Image.open(tmp_path / "masks" / f"{name}_mask.png")
        assert mask.size == size and mask.mode == "P"
        assert set(np.unique(np.asarray(mask))) <= {0, 1}
    # At a legal size the Predictor's mask is the model's own, thresholded at 0.5.
    image = scene(64, 96, 5)
    x = normalize(image, Predictor(foreign["det"], mean=(0.5,) * 3, std=(0.5,) * 3).card)[None]
    expected = (_direct(foreign["det"], x)[0, 0] > 0.5).astype(np.uint8)
    got = Predictor(foreign["det"], mean=(0.5,) * 3, std=(0.5,) * 3).predict(image)
    assert np.array_equal(got, expected) and 0 < expected.mean() < 1


def test_a_size_the_model_refuses_is_one_line_naming_the_fix(cli, tmp_path, foreign, photos):
    code, _, err = cli("predict", foreign["det"], photos / "b.jpg", "-o", tmp_path, *HALF, "--size-divisor", "1")
    line = one_error_line(err)
    assert code == 1 and "running on a 1 x 3 x 77 x 45 input failed" in line and "--size-divisor" in line


def test_nhwc_model_matches_its_own_run(foreign):
    image = scene(48, 40, 6)
    predictor = Predictor(foreign["nhwc"])
    x = normalize(image, predictor.card)[None].transpose(0, 2, 3, 1)
    session = ort.InferenceSession(str(foreign["nhwc"]), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": np.ascontiguousarray(x)})[0][0].argmax(-1)
    got = predictor.predict(image)
    assert np.array_equal(got, expected) and len(np.unique(expected)) > 1
    assert predictor.predict(scene(33, 17, 7)).shape == (33, 17)


def test_label_map_model_needs_its_class_count_then_works(foreign):
    with pytest.raises(CardError, match="give --classes"):
        Predictor(foreign["argmax"])
    predictor = Predictor(foreign["argmax"], classes=("bg", "red", "green", "blue"))
    image = scene(48, 40, 8)
    x = normalize(image, predictor.card)[None]
    expected = _direct(foreign["argmax"], x)[0]
    assert np.array_equal(predictor.predict(image), expected)
    proba = predictor.predict_proba(image)
    assert proba.shape == (4, 48, 40) and set(np.unique(proba)) == {0.0, 1.0}


def test_static_model_pads_small_images_and_tiles_large_ones(foreign):
    predictor = Predictor(foreign["static"])
    assert not predictor.card.dynamic and predictor.card.input_size == (96, 128)
    small, large = scene(50, 60, 9), scene(300, 200, 10)
    assert predictor.predict(small).shape == (50, 60)
    assert predictor.predict(large).shape == (300, 200)
    exact = scene(96, 128, 11)
    x = normalize(exact, predictor.card)[None]
    assert np.array_equal(predictor.predict(exact), _direct(foreign["static"], x)[0].argmax(0))
    masks = predictor.predict_batch([small, large, exact, small])  # batched images share fixed-batch runs
    assert [m.shape for m in masks] == [(50, 60), (300, 200), (96, 128), (50, 60)]


def test_bench_and_verify_against_the_fp32_file(cli, foreign, photos, tmp_path):
    code, out, err = cli("bench", foreign["det"], "--no-torch", "--input-size", "64x96", "--runs", "2", "--json", *HALF)
    assert code == 0, err
    assert json.loads(out)["rows"][0]["status"] == "ok"
    code, out, err = cli("verify", foreign["det"], "--reference", foreign["det"], "--images", photos, "--json", *HALF)
    assert code == 0 and json.loads(out)["passed"], err


def _with_flipped_head(source, target):
    """A broken copy: the last conv's weights negated (a sigmoid model then says the opposite)."""
    model = onnx.load(str(source))
    last = [n for n in model.graph.node if n.op_type == "Conv"][-1]
    init = {i.name: i for i in model.graph.initializer}[last.input[1]]
    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    onnx.save(model, str(target))
    return target


def test_a_broken_sigmoid_model_fails_the_int8_preset(cli, foreign, photos, tmp_path):
    broken = _with_flipped_head(foreign["det"], tmp_path / "broken.onnx")
    code, out, err = cli("verify", broken, "--reference", foreign["det"], "--images", photos, "--preset", "int8",
                         "--json", *HALF)
    result = json.loads(out)
    assert code == 1 and not result["passed"]
    assert result["results"][0]["argmax_agreement"] < 0.5


def test_quantize_calibrates_with_the_given_normalisation_and_eval_scores_it(cli, foreign, tmp_path):
    data = write_shapes_dataset(tmp_path / "shapes", ShapesConfig(train=8, val=6, size=(64, 96)))
    out_file = tmp_path / "det_int8.onnx"
    code, out, err = cli("quantize", foreign["det"], "--precision", "int8", "--calib", data, "--calib-count", "8",
                         "-o", out_file, "--json", *HALF)
    result = json.loads(out)
    assert result["precision"] == "int8" and code in (0, 1), err  # the preset's verdict is the model's business
    card = Predictor(out_file).card  # the int8 file now carries a card, with the normalisation it was calibrated with
    assert card.mean == (0.5, 0.5, 0.5) and card.std == (0.5, 0.5, 0.5) and card.size_divisor == 32
    assert card.output_kind == "sigmoid" and card.calibration["images"] == 8
    code, out, err = cli("eval", foreign["det"], out_file, "--data", data, "--json", *HALF)
    scores = json.loads(out)["models"]
    assert code == 0 and len(scores) == 2 and all(0 <= s["miou"] <= 1 for s in scores), err
