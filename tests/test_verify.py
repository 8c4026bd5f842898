"""`segedge.parity.run_verify` and `segedge.evaluate.run_eval`, called as the CLI calls them."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from runtimes.errors import CardError, UsageError
from runtimes.model.precision import Precision
from segedge.data import ShapesConfig, write_shapes_dataset
from segedge.evaluate import EvalRequest, run_eval
from segedge.parity import VerifyRequest, run_verify


def _with_flipped_classifier(source, target):
    """The same file with the last conv's weights negated: every argmax moves."""
    model = onnx.load(str(source))
    last = [n for n in model.graph.node if n.op_type == "Conv"][-1]
    weights = {i.name: i for i in model.graph.initializer}
    tensor = weights[last.input[1]]
    tensor.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(tensor), tensor.name))
    onnx.save(model, str(target))
    return target


def test_verify_against_pytorch_at_the_default_sizes(tiny_export):
    result = run_verify(VerifyRequest(model=tiny_export("48x40")))
    assert result.passed and result.against == "PyTorch" and result.preset is Precision.fp32
    assert [c.label for c in result.checks] == ["1x48x40", "1x37x53"]  # the export size and a non-square other
    assert all(c.parity.argmax_agreement >= 0.9999 for c in result.checks)
    assert result.to_dict()["results"][1]["size"] == [37, 53]


def test_verify_against_onnx_fails_a_broken_candidate(tiny_export, tmp_path):
    good = tiny_export("48x40")
    broken = _with_flipped_classifier(good, tmp_path / "broken.onnx")
    assert run_verify(VerifyRequest(model=good, reference=good, sizes=((31, 29),))).passed
    result = run_verify(VerifyRequest(model=broken, reference=good, sizes=((31, 29),), preset=Precision.int8))
    assert not result.passed and result.preset is Precision.int8
    failures = result.checks[0].failures
    assert any(f.startswith("argmax agreement") for f in failures), failures


def test_verify_on_images_judges_one_row(tiny_export, tmp_path):
    data = write_shapes_dataset(tmp_path / "shapes", ShapesConfig(train=3, val=0, size=(40, 36)))
    model = tiny_export("48x40")
    result = run_verify(VerifyRequest(model=model, reference=model, images=data))
    assert result.passed and not result.generated
    assert [c.label for c in result.checks] == ["3 images"] and result.checks[0].parity.images == 3


def test_verify_needs_a_card_or_a_reference(tmp_path, tiny_export):
    bare = onnx.load(str(tiny_export("48x40")))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(CardError, match="no segedge model card"):
        run_verify(VerifyRequest(model=tmp_path / "bare.onnx"))


def test_eval_scores_onnx_and_pytorch_alike(tiny_export, tmp_path):
    data = write_shapes_dataset(tmp_path / "shapes", ShapesConfig(train=0, val=4, size=(40, 48)))
    model = tiny_export("48x40")
    result = run_eval(EvalRequest(data=data, models=(model,), torch_model="tests/tiny_models.py:build"))
    (onnx_label, onnx_score), (torch_label, torch_score) = result.scores
    assert result.images == 4 and onnx_label == "tiny.onnx (fp32)" and torch_label.endswith("(PyTorch)")
    assert onnx_score.miou == pytest.approx(torch_score.miou, abs=1e-6)
    assert np.allclose(onnx_score.per_class_iou, torch_score.per_class_iou, equal_nan=True)
    assert result.to_dict()["images"] == 4


def test_eval_request_needs_a_model():
    with pytest.raises(UsageError, match="at least one ONNX model"):
        EvalRequest(data=__import__("pathlib").Path("."))
