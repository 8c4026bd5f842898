"""Bring your own model: the libraries users train with, through every verb (issue 20).

Hugging Face transformers' SegFormer runs here in the main venv. smp (segmentation_models_pytorch
with timm) and torchvision need torch 2.14.1 + torchvision 0.29.1: those tests are marked `byo`
and run in the second venv (`.venv-tv/bin/python -m pytest -m byo`); elsewhere they skip.
Real libraries, real exports, real ONNX Runtime sessions; small models and inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from exporters.torch_to_onnx import Exporter, LogitsOnly
from runtimes.imaging.image import load_image
from runtimes.imaging.postprocess import labels
from runtimes.predictor import Predictor
from runtimes.imaging.preprocess import at_input_resolution, from_model_output, to_model_input
from runtimes.backends.onnxruntime_session import open_session
from segedge.export.run import ExportRequest, ExportResult, run_export
from segedge.sources import build
from tests.byo_helpers import (
    IMAGENET,
    ODD_SIZES,
    labelled_folder,
    mask_size,
    odd_images,
)
from tests.byo_models import SHAPES

HF = "tests/byo_models.py:segformer"
LEGAL = ["64x96", "96x160", "128x64"]  # multiples of 32, non-square, none the export size


def _fixed_dims(path: Path) -> tuple[list, list]:
    graph = onnx.load(str(path)).graph
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (graph.input[0], graph.output[0])]
    return dims[0], dims[1]


def _torch_labels(source: str, card, rgb: np.ndarray, output_key: str | None = None) -> np.ndarray:
    """What the PyTorch model says for an image prepared as the Predictor prepares it."""
    model = LogitsOnly(build(source).module, output_key).eval()
    x, placement = to_model_input(rgb, card)
    with torch.no_grad():
        out = model(torch.from_numpy(x[None]))[0].numpy()
    return labels(from_model_output(at_input_resolution(out, card, x.shape[1:]), placement), card.output_kind)


def check_predict(cli, path: Path, source: str, images: dict[str, Path], folder: Path) -> None:
    """`segedge predict` on images that are not multiples of the divisor: masks of each image's size,
    the labels PyTorch gives through the same preparation."""
    code, _, err = cli("predict", path, *images.values(), "-o", folder)
    assert code == 0, err
    for name, size in ODD_SIZES.items():
        assert mask_size(folder / name.replace(".png", "_mask.png")) == size
    predictor = Predictor(path)
    rgb = load_image(images["photo.png"])
    agreement = float(np.mean(predictor.predict(rgb) == _torch_labels(source, predictor.card, rgb)))
    assert agreement >= 0.999


def check_verify_legal(cli, path: Path, sizes: list[str]) -> list[dict]:
    code, out, err = cli("verify", path, "--sizes", ",".join(sizes), "--json")
    assert code == 0, err
    results = json.loads(out)["results"]
    assert [r["label"] for r in results] == [f"1x{s}" for s in sizes]
    for r in results:
        assert r["max_abs"] <= 1e-4 * r["logits_range"] and r["argmax_agreement"] == 1.0
    return results


# -- Hugging Face SegFormer (main venv) ---------------------------------------------------------
@pytest.fixture(scope="module")
def hf(tmp_path_factory) -> tuple[ExportResult, Path]:
    """The SegFormer exported once with the default (dynamo) exporter, dynamic N/H/W."""
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("byo_hf")
    result = run_export(ExportRequest(source=HF, output=folder / "segformer.onnx", input_size=(64, 64)))
    return result, folder


@pytest.fixture(scope="module")
def byo_data(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("byo_data")
    return labelled_folder(root / "shapes"), odd_images(root / "images")


def test_hf_card_is_learned_from_the_model(hf):
    result, _ = hf
    card = result.card
    # SegFormer's config: patch strides 4, 2, 2, 2 -> logits at 1/4, sides multiples of 32; id2label -> names.
    assert (card.output_stride, card.size_divisor, card.valid_margin) == (4, 32, 0)
    assert card.classes == tuple(SHAPES.values())
    assert any("Hugging Face" in note and "divisor 32" in note for note in result.notes)
    assert result.passed
    sizes = [tuple(s["size"]) for s in card.parity["sizes"]]
    assert sizes[0] == (64, 64) and sizes[1][0] != sizes[1][1] and all(side % 32 == 0 for side in sizes[1])


def test_hf_export_keeps_batch_height_and_width_dynamic(hf):
    result, _ = hf
    inputs, outputs = _fixed_dims(result.path)
    assert inputs == ["N", 3, "H", "W"]
    assert isinstance(outputs[0], str) and outputs[1] == 4  # the batch is not fixed to 1
    session = open_session(result.path)
    model = LogitsOnly(build(HF).module).eval()
    for n, h, w in [(1, 96, 160), (3, 64, 96)]:
        x = np.random.default_rng(n).standard_normal((n, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            reference = model(torch.from_numpy(x)).numpy()
        got = session.run(x)
        assert got.shape == (n, 4, h // 4, w // 4)
        np.testing.assert_allclose(got, reference, atol=1e-5)


def test_hf_parity_at_three_legal_sizes(cli, hf):
    result, _ = hf
    check_verify_legal(cli, result.path, LEGAL)


def test_hf_predict_at_sizes_not_multiples_of_the_divisor(cli, hf, byo_data, tmp_path):
    result, _ = hf
    check_predict(cli, result.path, HF, byo_data[1], tmp_path / "masks")


def test_hf_int8_calibrated_then_verified_and_evaluated(cli, hf, byo_data, tmp_path):
    result, _ = hf
    data, _ = byo_data
    int8 = tmp_path / "segformer_int8.onnx"
    code, out, err = cli("quantize", result.path, "--precision", "int8", "--calib", data, "-o", int8, "--json")
    report = json.loads(out)
    # Random weights give near-tied logits: the preset may fail (exit 1), but the file is written and measured.
    assert code in (0, 1), err
    assert report["calibration"]["images"] == 12 and report["calibration"]["quantized_convs"] > 0
    assert report["agreement"]["argmax_agreement"] >= 0.95
    assert open_session(int8).card.precision == "int8"
    code, out, err = cli("verify", int8, "--reference", result.path, "--images", data / "JPEGImages", "--json")
    assert code in (0, 1), err
    assert json.loads(out)["results"][0]["argmax_agreement"] >= 0.95
    # eval: the ONNX file and the PyTorch model (built from the source, as export built it) agree.
    code, out, err = cli("eval", result.path, "--data", data, "--torch", HF, "--json")
    assert code == 0, err
    scores = {m["name"]: m["miou"] for m in json.loads(out)["models"]}
    assert len(scores) == 2 and abs(scores[result.path.name] - scores[HF]) < 1e-6


def test_hf_bench_beside_pytorch(cli, hf):
    result, _ = hf
    code, out, err = cli("bench", result.path, "--torch", "--runs", "2", "--warmup", "1", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["rows"]}
    assert rows["onnxruntime fp32"]["status"] == rows["pytorch eager fp32"]["status"] == "ok"


def test_hf_report_with_a_checkpoint(cli, byo_data, tmp_path):
    pytest.importorskip("transformers")
    data, _ = byo_data
    torch.manual_seed(1)  # weights that are not the build's own seed: the checkpoint must really load
    checkpoint = tmp_path / "ckpt.pt"
    torch.save(build(HF).module.state_dict(), checkpoint)
    folder = tmp_path / "report"
    code, _, err = cli("report", HF, "--weights", checkpoint, "--input-size", "64x64", "--precisions", "fp32,int8",
                       "--runtimes", "onnxruntime,torch", "--calib", data, "--data", data, "--runs", "2",
                       "--warmup", "1", "-o", folder)
    report = json.loads((folder / "report.json").read_text())
    rows = {r["label"]: r for r in report["rows"]}
    assert rows["fp32 / cpu / onnxruntime"]["status"] == rows["fp32 / cpu / torch"]["status"] == "ok", err
    assert rows["fp32 / cpu / onnxruntime"]["miou"] == pytest.approx(rows["fp32 / cpu / torch"]["miou"], abs=1e-6)
    assert rows["int8 / cpu / onnxruntime"]["status"] == "ok", err
    assert code in (0, 1)


def test_num_classes_only_for_builders_that_take_it(cli, tmp_path):
    pytest.importorskip("transformers")
    code, _, err = cli("export", HF, "--num-classes", "3", "-o", tmp_path / "x.onnx")
    assert code == 2 and "does not take num_classes" in err and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()


# -- smp (with timm) and torchvision (.venv-tv) -------------------------------------------------
SMP = {  # builder -> the size divisor segedge must learn
    "smp_unet": 1,  # smp's Unet takes any size (requires_divisible_input_shape is False)
    "smp_fpn": 32,
    "smp_deeplabv3plus": 16,  # its encoder is dilated to output stride 16
    "smp_segformer": 32,
    "torchvision_deeplabv3": 16,  # the MobileNetV3 backbone's deepest feature
}
ANY_SIZE = ["49x83", "77x101", "100x60"]


@pytest.fixture(scope="module")
def smp_exports(tmp_path_factory):
    """Each smp / torchvision builder exported once (torchscript: seconds), with its export result."""
    pytest.importorskip("segmentation_models_pytorch")
    pytest.importorskip("torchvision")
    folder = tmp_path_factory.mktemp("byo_smp")
    done: dict[str, ExportResult] = {}

    def export(name: str) -> ExportResult:
        if name not in done:
            done[name] = run_export(ExportRequest(source=f"tests/byo_models.py:{name}", output=folder / f"{name}.onnx",
                                                  input_size=(64, 64), exporter=Exporter.torchscript))
        return done[name]

    return export


@pytest.mark.byo
@pytest.mark.parametrize("name", list(SMP))
def test_library_model_exports_verifies_and_predicts(cli, smp_exports, byo_data, tmp_path, name):
    result = smp_exports(name)
    card = result.card
    assert result.passed and card.size_divisor == SMP[name] and card.output_stride == 1
    assert card.parity["sizes"][1]["size"][0] % SMP[name] == 0  # export's own second size is legal
    check_verify_legal(cli, result.path, LEGAL if SMP[name] > 1 else ANY_SIZE)
    check_predict(cli, result.path, f"tests/byo_models.py:{name}", byo_data[1], tmp_path / "masks")


@pytest.mark.byo
def test_torchvision_aux_is_dropped_and_output_key_chooses(cli, smp_exports, tmp_path):
    result = smp_exports("torchvision_deeplabv3")
    assert any("'aux' dropped" in note for note in result.notes) and result.card.output_key is None
    path = tmp_path / "aux.onnx"
    code, _, err = cli("export", "tests/byo_models.py:torchvision_deeplabv3", "--output-key", "aux", "--input-size",
                       "64x64", "--exporter", "torchscript", "-o", path)
    assert code == 0, err
    assert open_session(path).card.output_key == "aux"
    code, out, err = cli("verify", path, "--sizes", "64x96", "--json")  # the reference is rebuilt with "aux"
    assert code == 0 and json.loads(out)["passed"], err
    code, _, err = cli("export", "tests/byo_models.py:torchvision_deeplabv3", "--output-key", "heads",
                       "--input-size", "64x64", "-o", tmp_path / "no.onnx")
    assert code == 2 and "no key 'heads'" in err and "'out', 'aux'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.byo
def test_a_size_the_model_refuses_is_one_line_with_the_rule(cli, tmp_path):
    pytest.importorskip("segmentation_models_pytorch")
    code, _, err = cli("export", "tests/byo_models.py:smp_fpn", "--input-size", "70x90", "-o", tmp_path / "x.onnx")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "cannot run at 70x90" in err and "multiples of 32, from smp: encoder.output_stride" in err
    assert "try --input-size 64x96" in err


@pytest.mark.byo
def test_smp_dynamo_export_int8_and_report(cli, byo_data, tmp_path):
    """The default exporter, then int8 calibrated on images, then the report with a checkpoint."""
    pytest.importorskip("segmentation_models_pytorch")
    data, _ = byo_data
    source = "tests/byo_models.py:smp_fpn"
    result = run_export(ExportRequest(source=source, output=tmp_path / "fpn.onnx", input_size=(64, 96)))
    assert result.passed and _fixed_dims(result.path)[1][0] == "N"
    code, out, err = cli("quantize", result.path, "--precision", "int8", "--calib", data, *IMAGENET, "--json")
    assert code in (0, 1), err
    assert json.loads(out)["agreement"]["argmax_agreement"] >= 0.9
    torch.manual_seed(1)
    checkpoint = tmp_path / "ckpt.pt"
    torch.save(build(source).module.state_dict(), checkpoint)
    folder = tmp_path / "report"
    code, _, err = cli("report", source, "--weights", checkpoint, "--input-size", "64x96", "--precisions", "fp32",
                       "--runtimes", "onnxruntime,torch", "--runs", "2", "--warmup", "1", "-o", folder)
    assert code == 0, err
    rows = json.loads((folder / "report.json").read_text())["rows"]
    assert {r["label"]: r["status"] for r in rows} == {"fp32 / cpu / onnxruntime": "ok", "fp32 / cpu / torch": "ok"}
