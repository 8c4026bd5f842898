"""`--isolate` on every verb that opens a user's ONNX file, and `Predictor(..., isolate=True)`.

A runtime crash is simulated as in tests/test_isolate.py: the child's interpreter is replaced by
a shell script that kills itself. The parent must turn that into one error line and never open
the model itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from runtimes.model.card import ModelCard
from runtimes.errors import ModelFileError
from segedge.cli import main


def conv_model(path: Path, shape=("N", 3, "H", "W")) -> Path:
    from exporters.card_io import embed_card

    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["logits"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [w],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    card = ModelCard(name="conv", classes=("a", "b"), input_size=(40, 40), dynamic=shape[2] == "H")
    path.write_bytes(embed_card(proto, card).SerializeToString())
    return path


@pytest.fixture
def model(tmp_path):
    return conv_model(tmp_path / "model.onnx")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(path)
    return path


@pytest.fixture
def crashing_child(tmp_path, monkeypatch):
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\nkill -SEGV $$\n")
    script.chmod(0o755)
    monkeypatch.setattr("sys.executable", str(script))


def verbs(model: Path, photo: Path, out: Path) -> dict[str, list[str]]:
    return {
        "info": ["info", str(model)],
        "verify": ["verify", str(model), "--reference", str(model), "--sizes", "16x16"],
        "bench": ["bench", str(model), "--no-torch", "--runs", "1", "--warmup", "0", "--input-size", "16x16"],
        "predict": ["predict", str(model), str(photo), "-o", str(out)],
        "eval": ["eval", str(model), "--data", str(labelled(photo.parent / "data"))],
        "quantize": ["quantize", str(model), "--precision", "fp16", "-o", str(out / "fp16.onnx")],
    }


def labelled(root: Path) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    Image.new("RGB", (8, 6), (10, 20, 30)).save(root / "images" / "a.png")
    Image.new("L", (8, 6), 1).save(root / "masks" / "a.png")
    return root


VERBS = ["info", "verify", "bench", "predict", "eval", "quantize"]


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("segedge: error: ")]


@pytest.mark.parametrize("verb", VERBS)
def test_a_crashing_model_is_one_error_and_never_opened_in_process(verb, model, photo, tmp_path, crashing_child,
                                                                   monkeypatch, capsys):
    def never(*args, **kwargs):
        raise AssertionError("ONNX Runtime opened the model in process although the probe failed")

    monkeypatch.setattr(onnxruntime, "InferenceSession", never)
    args = verbs(model, photo, tmp_path / "out")[verb]
    code = main([*args, "--isolate"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(error_lines(err)) == 1 and "crashed the runtime (SIGSEGV)" in error_lines(err)[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("verb", VERBS)
def test_without_isolate_no_child_is_started(verb, model, photo, tmp_path, crashing_child, capsys):
    args = verbs(model, photo, tmp_path / "out")[verb]
    code = main(args)
    assert code == 0, capsys.readouterr().err


def test_a_good_model_passes_the_real_probe(model, photo, tmp_path, capsys):
    assert main(["info", str(model), "--isolate", "--json"]) == 0
    assert main(["predict", str(model), str(photo), "-o", str(tmp_path / "out"), "--isolate"]) == 0
    assert (tmp_path / "out" / "photo_mask.png").is_file()


def test_a_static_model_is_probed_at_its_own_size(tmp_path, capsys):
    # A 64 x 64 probe would fail on a model fixed at 40 x 40: the probe uses the declared size.
    static = conv_model(tmp_path / "static.onnx", shape=(1, 3, 40, 40))
    assert main(["info", str(static), "--isolate"]) == 0, capsys.readouterr().err


def test_predictor_isolate(model, crashing_child):
    from runtimes.predictor import Predictor

    with pytest.raises(ModelFileError, match=r"crashed the runtime \(SIGSEGV\)"):
        Predictor(model, isolate=True)
    assert Predictor(model).predict(np.zeros((5, 7, 3), np.uint8)).shape == (5, 7)


def test_a_model_that_allocates_too_much_is_stopped_by_the_childs_own_limit(tmp_path, capsys):
    """A valid graph whose output is 20000 x 20000 x 3 floats (4.8 GB): the child's 1 GB cap stops it."""
    from runtimes.guards.isolate import probe_model

    shape = numpy_helper.from_array(np.array([1, 3, 20000, 20000], np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["image", "image"], ["squared"]),
         helper.make_node("ConstantOfShape", ["shape"], ["huge"]),
         helper.make_node("Add", ["huge", "squared"], ["logits"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [shape],
    )
    path = tmp_path / "hungry.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    with pytest.raises(ModelFileError, match="ran out of memory|allocat"):
        probe_model(path, memory_mb=1024, timeout_s=120)
