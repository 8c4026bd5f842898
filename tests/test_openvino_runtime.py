"""The OpenVINO Predictor (`runtime="openvino"`, runtimes/backends/openvino_session.py) on every path the ONNX
Runtime one has: sizes, predict / proba / batch, resize, tiles, threads, one-channel, valid-mode and
foreign models, IR files with their card; hints, the shape cache and the runtime mismatch."""

from __future__ import annotations

import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from exporters.card_io import embed_card
from runtimes import Predictor
from runtimes.model.card import ModelCard
from runtimes.errors import CardError, ModelFileError, UsageError
from runtimes.measure.parity import PRESETS, compare_outputs, judge
from runtimes.model.precision import Precision
from runtimes.backends.selection import RuntimeMismatchWarning, open_model
from tests.predictor_models import SmallFieldNet, scene

pytest.importorskip("openvino")

SIZES = [(1, 1), (1, 301), (513, 1025), (7, 3), (8, 8), (64, 64)]


def openvino(path, **options) -> Predictor:
    options.setdefault("openvino_hint", "f32")  # fp32 files judged by the fp32 preset: ask OpenVINO for f32
    return Predictor(path, runtime="openvino", **options)


def assert_same_masks(a: Predictor, b: Predictor, image: np.ndarray, precision: Precision = Precision.fp32) -> None:
    """The two Predictors' masks agree within `precision`'s preset (fp32: the very same label maps)."""
    parity = compare_outputs(a.predict_proba(image), b.predict_proba(image), "probabilities",
                             num_classes=max(a.card.num_classes, 2))
    assert not judge(parity, PRESETS[precision]), judge(parity, PRESETS[precision])
    if precision is Precision.fp32:
        np.testing.assert_array_equal(a.predict(image), b.predict(image))


@pytest.fixture(scope="module")
def pair(predictor_models):
    return Predictor(predictor_models.multiclass), openvino(predictor_models.multiclass)


# -- sizes and modes -------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_label_maps_equal_onnx_runtime_at_every_size(pair, size):
    ort_predictor, ov_predictor = pair
    image = scene(*size, seed=size[1])
    labels = ov_predictor.predict(image)
    assert labels.shape == size and labels.dtype == np.uint8
    assert_same_masks(ort_predictor, ov_predictor, image)


def test_predictions_are_not_trivial(pair):
    assert len(np.unique(pair[1].predict(scene(200, 300)))) >= 3


def test_predict_batch_equals_one_by_one_and_onnx_runtime(pair):
    ort_predictor, ov_predictor = pair
    images = [scene(40, 56, 1), scene(33, 57, 2), scene(40, 56, 3), scene(1, 9, 4), scene(40, 56, 5), scene(120, 20, 6)]
    batched = ov_predictor.predict_batch(images)
    for image, labels, expected in zip(images, batched, ort_predictor.predict_batch(images)):
        np.testing.assert_array_equal(labels, ov_predictor.predict(image))
        np.testing.assert_array_equal(labels, expected)


def test_resize_long_and_inputs_of_every_kind(predictor_models, tmp_path):
    from PIL import Image

    ort_predictor = Predictor(predictor_models.multiclass, resize_long=90)
    ov_predictor = openvino(predictor_models.multiclass, resize_long=90)
    image = scene(150, 301)
    path = tmp_path / "scene.png"
    Image.fromarray(image).save(path)
    for source in (image, path, Image.fromarray(image), image.astype(np.uint16) * 257):
        labels = ov_predictor.predict(source)
        assert labels.shape == (150, 301)
        np.testing.assert_array_equal(labels, ort_predictor.predict(source))


def test_predict_runs_the_argmax_inside_the_compiled_model(predictor_models, pair):
    ov_predictor = openvino(predictor_models.multiclass)
    image = scene(61, 83)
    np.testing.assert_array_equal(ov_predictor.predict(image), pair[0].predict(image))
    assert ov_predictor.session.labels_in_graph
    assert [labels for _, labels in ov_predictor.session._cache] == [True]  # no scores variant was compiled
    ov_predictor.predict_proba(image)  # probabilities need the scores: their own compiled variant, same shape
    assert [labels for _, labels in ov_predictor.session._cache] == [True, False]
    assert ov_predictor.session.cached_shapes() == ((1, 3, 64, 88),)
    for binary in (predictor_models.sigmoid, predictor_models.logit):  # thresholded, not an argmax
        assert not openvino(binary).session.labels_in_graph


# -- tiles, threads, the shape cache -------------------------------------------------------------
def test_tiles_match_onnx_runtime_and_share_one_shape(predictor_models):
    ort_predictor = Predictor(predictor_models.multiclass, tile_size=64, batch_size=3)
    ov_predictor = openvino(predictor_models.multiclass, tile_size=64, batch_size=3)
    image = scene(300, 170, seed=3)
    np.testing.assert_array_equal(ov_predictor.predict(image), ort_predictor.predict(image))
    np.testing.assert_allclose(ov_predictor.predict_proba(image), ort_predictor.predict_proba(image), atol=1e-4)
    shapes = ov_predictor.session.cached_shapes()
    assert {shape[2:] for shape in shapes} == {(64, 64)}  # every tile has the tile's size; batches differ only in N


def test_compiled_shapes_are_cached_and_bounded(predictor_models):
    predictor = Predictor(predictor_models.multiclass, runtime="openvino", openvino_hint="f32")
    predictor.session.max_shapes = 2
    for size in ((16, 16), (24, 24), (16, 16), (32, 32)):
        predictor.predict(scene(*size))
    # (16, 16) was used again before (32, 32) came: (24, 24) is the least recently used, dropped.
    assert predictor.session.cached_shapes() == ((1, 3, 16, 16), (1, 3, 32, 32))


@pytest.mark.parametrize("tiled", [False, True])
def test_eight_threads_sharing_one_openvino_predictor_get_the_serial_results(predictor_models, tiled):
    predictor = openvino(predictor_models.multiclass, threads=1, tile_size=64 if tiled else None)
    images = [scene(40 + 7 * i, 90 - 5 * i, seed=i) for i in range(16)]
    serial = [predictor.predict(image) for image in images]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            for a, b in zip(serial, pool.map(predictor.predict, images)):
                np.testing.assert_array_equal(a, b)


# -- one-channel, valid-mode and foreign models ------------------------------------------------------
def test_one_channel_models(predictor_models):
    image = scene(70, 90)
    for path in (predictor_models.sigmoid, predictor_models.logit):
        ov_predictor = openvino(path)
        assert set(np.unique(ov_predictor.predict(image))) == {0, 1}
        np.testing.assert_array_equal(ov_predictor.predict(image), Predictor(path).predict(image))
        np.testing.assert_allclose(ov_predictor.predict_proba(image), Predictor(path).predict_proba(image), atol=1e-5)


@pytest.mark.parametrize("size", [(1, 1), (5, 250), (188, 189)])
def test_valid_unet_matches_onnx_runtime(predictor_models, size):
    if predictor_models.unet_valid is None:
        pytest.skip("segedge.models.unet is not there")
    image = scene(*size)
    assert_same_masks(Predictor(predictor_models.unet_valid), openvino(predictor_models.unet_valid), image)


def test_model_without_card_gets_the_onnx_runtime_predictors_card(predictor_models):
    ort_predictor, ov_predictor = Predictor(predictor_models.no_card), openvino(predictor_models.no_card)
    assert ov_predictor.card == ort_predictor.card and not ov_predictor.session.inspection.stored
    assert ov_predictor.card.size_divisor == ort_predictor.card.size_divisor
    named = openvino(predictor_models.no_card, classes=["a", "b", "c", "d"], color_order="BGR")
    assert named.card.classes == ("a", "b", "c", "d") and named.card.color_order == "BGR"
    assert_same_masks(ort_predictor, ov_predictor, scene(50, 64))


class _NHWC(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = SmallFieldNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class _ArgMax(SmallFieldNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).argmax(dim=1)


def _export(model: torch.nn.Module, path: Path, shape: tuple[int, ...], dynamic: dict | None) -> Path:
    """As other tools' export scripts do: TorchScript exporter, their own names, no segedge card."""
    torch.manual_seed(0)
    with torch.no_grad():
        torch.onnx.export(model.eval(), (torch.randn(*shape),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes=dynamic)
    return path


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ov_foreign")
    torch.manual_seed(0)
    return {
        "nhwc": _export(_NHWC(), folder / "nhwc.onnx", (1, 48, 40, 3), {"x": {0: "n", 1: "h", 2: "w"}, "y": {0: "n", 1: "h", 2: "w"}}),
        "argmax": _export(_ArgMax(), folder / "argmax.onnx", (1, 3, 48, 40), {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 1: "h", 2: "w"}}),
        "static": _export(SmallFieldNet(), folder / "static.onnx", (1, 3, 96, 128), None),
    }


@pytest.mark.parametrize("kind", ["nhwc", "argmax", "static"])
def test_foreign_models_match_onnx_runtime(foreign, kind):
    options = {"classes": ["a", "b", "c", "d"]} if kind == "argmax" else {}
    ort_predictor, ov_predictor = Predictor(foreign[kind], **options), openvino(foreign[kind], **options)
    assert ov_predictor.card == ort_predictor.card
    for size in ((37, 45), (250, 300)):  # the static model pads the small image and tiles the large one
        image = scene(*size, seed=size[0])
        np.testing.assert_array_equal(ov_predictor.predict(image), ort_predictor.predict(image))
    assert len(np.unique(ov_predictor.predict(scene(250, 300)))) >= 2
    if kind == "static":
        assert ov_predictor.session.cached_shapes() == ((1, 3, 96, 128),)


# -- IR files ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ir_file(predictor_models, tmp_path_factory):
    from exporters.targets.openvino_ir import write_ir

    folder = tmp_path_factory.mktemp("ov_ir")
    card = Predictor(predictor_models.multiclass).card.with_overrides(name="small_field_ir")
    xml, _ = write_ir(predictor_models.multiclass, folder / "model.xml", compress_to_fp16=False,
                      rt_info={"card": card.to_json()})
    return xml


def test_ir_file_opens_with_its_card_and_gives_the_onnx_masks(pair, ir_file):
    ov_predictor = openvino(ir_file)
    assert ov_predictor.card.name == "small_field_ir" and ov_predictor.session.inspection.stored
    image = scene(90, 77)
    np.testing.assert_array_equal(ov_predictor.predict(image), pair[0].predict(image))


def test_onnx_runtime_given_an_ir_says_which_runtime_opens_it(ir_file):
    with pytest.raises(ModelFileError, match="OpenVINO IR.*runtime='openvino'.*segedge\\[openvino\\]"):
        Predictor(ir_file, runtime="onnxruntime")


def test_no_runtime_named_is_the_files_own(pair, ir_file, predictor_models):
    ort_predictor, _ = pair
    from_ir, from_onnx = Predictor(ir_file, openvino_hint="f32"), Predictor(predictor_models.multiclass)
    assert (from_ir.runtime.value, from_onnx.runtime.value) == ("openvino", "onnxruntime")
    assert from_ir.session.describe().startswith("OpenVINO")
    image = scene(90, 77)
    np.testing.assert_array_equal(from_ir.predict(image), ort_predictor.predict(image))


def test_ir_without_a_card_is_refused_naming_the_fix(predictor_models, tmp_path):
    from exporters.targets.openvino_ir import write_ir

    bare = onnx.load(str(predictor_models.no_card))
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    xml, _ = write_ir(tmp_path / "bare.onnx", tmp_path / "bare.xml", compress_to_fp16=False, rt_info={})
    with pytest.raises(CardError, match="without a segedge card.*ONNX file"):
        openvino(xml)


# -- precision hints, errors, the runtime a file was made for ------------------------------------------
def test_hints_are_reported_and_bf16_keeps_the_masks(pair, predictor_models):
    assert pair[1].providers == ("OpenVINO CPU (f32)",)
    chosen = Predictor(predictor_models.multiclass, runtime="openvino")  # OpenVINO's own choice
    assert chosen.session.precision in ("f32", "bf16", "f16")
    assert chosen.providers == (f"OpenVINO CPU ({chosen.session.precision})",)
    bf16 = openvino(predictor_models.multiclass, openvino_hint="bf16")
    assert bf16.session.precision == "bf16" and "bf16 inference" in bf16.session.describe()
    # This untrained model's class margins are thin (98.9% of pixels keep their class in bf16, measured):
    # judged like int8 here; a trained model's bf16 masks are held to the fp16 preset in test_nncf_quantize.
    assert_same_masks(pair[0], bf16, scene(200, 260), Precision.int8)


def test_bad_runtime_options_are_usage_errors(predictor_models, tmp_path):
    with pytest.raises(UsageError, match="unknown runtime 'tensorflow'.*onnxruntime, openvino"):
        Predictor(predictor_models.multiclass, runtime="tensorflow")
    with pytest.raises(UsageError, match="hint must be auto, f32, bf16, f16"):
        Predictor(predictor_models.multiclass, runtime="openvino", openvino_hint="int4")
    with pytest.raises(UsageError, match="hint is for runtime='openvino'"):
        Predictor(predictor_models.multiclass, openvino_hint="bf16")
    with pytest.raises(ModelFileError, match="not found"):
        openvino(tmp_path / "missing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match="broken.onnx"):
        openvino(broken)
    (tmp_path / "lone.xml").write_text("<net/>")
    with pytest.raises(ModelFileError, match="not found: .*lone.bin"):
        openvino(tmp_path / "lone.xml")


def test_a_file_made_for_the_other_runtime_warns_in_one_line(predictor_models, tmp_path):
    made_for = {}
    for runtime in ("openvino", "onnxruntime"):
        model = onnx.load(str(predictor_models.multiclass))
        card = Predictor(predictor_models.multiclass).card.with_overrides(runtime=runtime)
        made_for[runtime] = tmp_path / f"for_{runtime}.onnx"
        onnx.save(embed_card(model, card), str(made_for[runtime]))
    for opened_on, other in (("onnxruntime", "openvino"), ("openvino", "onnxruntime")):
        with pytest.warns(RuntimeMismatchWarning) as caught:
            predictor = Predictor(made_for[other], runtime=opened_on)
        (message,) = [str(w.message) for w in caught]
        assert "\n" not in message
        assert f"was quantized for {other}, not {opened_on}" in message
        assert f"--runtime {other}" in message and f"segedge quantize --for {opened_on}" in message
        assert predictor.predict(scene(20, 20)).shape == (20, 20)  # it still runs
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            open_model(made_for[opened_on], opened_on, "cpu", 1)  # its own runtime: no warning


def test_old_cards_without_a_runtime_read_as_any_runtime(predictor_models):
    card = ModelCard.from_json(Predictor(predictor_models.multiclass).card.to_json().replace('"runtime":null,', ""))
    assert card.runtime is None
    with pytest.raises(CardError, match="runtime"):
        card.with_overrides(runtime="")


def test_importing_runtimes_does_not_import_openvino():
    code = "import sys, runtimes, runtimes.backends.selection; print('openvino' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip() == "False"
