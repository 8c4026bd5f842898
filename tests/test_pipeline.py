"""The export pipeline on real parts: torch exporters, onnxsim, ONNX Runtime, files on disk."""


import numpy as np
import onnx
import pytest
import torch

from exporters.card_io import read_card_from_proto
from exporters.torch_to_onnx import Exporter
from runtimes.errors import ExportError, UsageError
from runtimes.backends.onnxruntime_session import open_session
from segedge.export.run import ExportRequest, run_export
from tests.tiny_models import build

TINY = "tests/tiny_models.py:build"


@pytest.mark.parametrize("exporter", list(Exporter))
def test_user_model_exports_one_verified_file(tmp_path, exporter):
    out = tmp_path / "tiny.onnx"
    result = run_export(ExportRequest(source=TINY, output=out, input_size=(64, 48), exporter=exporter))
    assert result.passed and result.simplified
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]  # no .onnx.data, no temp files
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 3, "H", "W"]
    card = read_card_from_proto(proto)
    assert card == result.card
    assert card.classes == ("class_0", "class_1", "class_2", "class_3")
    assert card.exporter == exporter.value and card.source == TINY
    # Parity was measured at the export size and at a non-square other size.
    sizes = [tuple(s["size"]) for s in card.parity["sizes"]]
    assert sizes[0] == (64, 48) and sizes[1] != (64, 48) and sizes[1][0] != sizes[1][1]
    for p in result.parity:
        assert p.parity.max_abs <= 1e-4 * p.parity.logits_range
        assert p.parity.argmax_agreement >= 0.9999


def test_dynamic_export_runs_any_size_and_batch(tmp_path):
    out = tmp_path / "tiny.onnx"
    run_export(ExportRequest(source=TINY, output=out, input_size=(32, 32)))
    session = open_session(out)
    model = build().eval()
    for n, h, w in [(1, 1, 1), (2, 17, 93), (3, 64, 33)]:
        x = np.random.default_rng(n).standard_normal((n, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = session.run(x)
        assert got.shape == (n, 4, h, w)
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_static_export_fixes_the_shape(tmp_path):
    out = tmp_path / "static.onnx"
    result = run_export(ExportRequest(source=TINY, output=out, input_size=(40, 24), dynamic=False))
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 40, 24]
    assert len(result.parity) == 1 and result.card.dynamic is False


def test_dict_output_is_unwrapped(tmp_path):
    result = run_export(ExportRequest(source="tests.tiny_models:build_dict", output=tmp_path / "d.onnx", input_size=(32, 32)))
    assert result.passed and result.card.num_classes == 3


def test_binary_model_card_says_logit(tmp_path):
    result = run_export(ExportRequest(source=TINY.replace("build", "build_binary"), output=tmp_path / "b.onnx", input_size=(32, 32)))
    assert result.card.output_kind == "logit" and result.card.classes == ("class_0", "class_1")


def test_card_fields_from_options(tmp_path):
    result = run_export(
        ExportRequest(source=TINY, output=tmp_path / "c.onnx", input_size=(32, 32), num_classes=2,
                      card_fields={"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "classes": ("sky", "ground")})
    )
    card = open_session(tmp_path / "c.onnx").card
    assert card == result.card  # what the file says is what the export reported
    assert card.mean == (0.5, 0.5, 0.5) and card.classes == ("sky", "ground") and card.build_kwargs == {"num_classes": 2}


def test_no_simplify_keeps_the_raw_graph(tmp_path):
    result = run_export(ExportRequest(source=TINY, output=tmp_path / "raw.onnx", input_size=(32, 32), simplify=False))
    assert not result.simplified and "not simplified" in result.simplify_message
    assert result.passed


@pytest.mark.parametrize(
    "source, error, message",
    [
        ("no_such_model", UsageError, "unknown model 'no_such_model'"),
        ("deeplabv3plus_resnet5", UsageError, "did you mean deeplabv3plus_resnet50"),
        ("tests/tiny_models.py:nope", UsageError, "has no function 'nope'"),
        ("tests/missing.py:build", UsageError, "model file not found"),
        ("tests.tiny_models:build_broken", UsageError, "raised RuntimeError: this builder always fails"),
        ("tests.tiny_models:build_not_a_module", UsageError, "not a torch.nn.Module"),
        ("no_such_package.mod:build", UsageError, "cannot import module"),
    ],
)
def test_bad_sources_fail_before_writing(tmp_path, source, error, message):
    out = tmp_path / "x.onnx"
    with pytest.raises(error, match=message):
        run_export(ExportRequest(source=source, output=out, input_size=(32, 32)))
    assert list(tmp_path.iterdir()) == []


class Unexportable(torch.nn.Module):
    def forward(self, x):
        # Data-dependent Python control flow: neither exporter can express it with dynamic shapes.
        return x[:, :2] * (1 if float(x.sum()) > 0 else -1)


def test_failed_export_leaves_previous_output_intact(tmp_path, monkeypatch):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous")
    import tests.tiny_models as tiny

    monkeypatch.setattr(tiny, "build_unexportable", lambda: Unexportable(), raising=False)
    with pytest.raises(ExportError):
        run_export(ExportRequest(source="tests.tiny_models:build_unexportable", output=out, input_size=(8, 8),
                                 exporter=Exporter.dynamo, overwrite=True))  # b"previous" is not segedge's
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_output_into_a_directory_is_refused(tmp_path):
    from runtimes.errors import OutputError

    with pytest.raises(OutputError, match="is a directory"):
        run_export(ExportRequest(source=TINY, output=tmp_path, input_size=(16, 16)))


def test_model_that_cannot_run_at_the_export_size_is_a_usage_error(tmp_path):
    # The paper's valid U-Net takes 188 + 16k pixels per side; 200 is not one of them.
    with pytest.raises(UsageError, match=r"unet cannot run at 200x200: .*188"):
        run_export(ExportRequest(source="unet", output=tmp_path / "u.onnx", input_size=(200, 200)))
    assert list(tmp_path.iterdir()) == []


def test_rebuilt_reference_is_the_exported_network(tmp_path):
    """Random weights: `segedge verify` rebuilds the model and must get the very same network."""
    from segedge.sources import build as build_source

    a = build_source("lraspp_mobilenet_v3_large", num_classes=3).module.state_dict()
    torch.manual_seed(1234)  # whatever the caller's random state, the build is the same
    b = build_source("lraspp_mobilenet_v3_large", num_classes=3).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
