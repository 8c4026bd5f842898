"""Files the libraries users bring export themselves, through every verb (issue 11, point 5).

Not segedge's exporter: each file is written by the library's own recipe, `torch.onnx.export` as
its docs show (smp: input/output named "input"/"output", dynamic batch, height and width; Hugging
Face: "pixel_values" -> "logits" at 1/4; torchvision: a static shape, its "out" and "aux"
outputs), so it has no segedge card and everything is read from the graph and probed
(runtimes.model.inspection) or given as options (`--mean/--std`). The torchscript exporter is asked for
(`dynamo=False`), as those recipes were written for, and because it takes seconds.

The models come from tests/byo_models.py, built under segedge's seed, so that `eval --torch` on
the same builder scores the very same network. Hugging Face runs in the main venv; smp and
torchvision are marked `byo` (the second venv, `.venv-tv`) and skip where not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from runtimes.imaging.image import load_image
from runtimes.predictor import Predictor
from segedge.sources import build
from tests.byo_helpers import (
    IMAGENET,
    ODD_SIZES,
    labelled_folder,
    mask_size,
    odd_images,
)
from tests.test_byo_models import _torch_labels


def library_export(name: str, path: Path, *, input_name: str, output_names: list[str],
                   size: tuple[int, int] = (64, 64), dynamic: bool = True) -> Path:
    """`torch.onnx.export` the way the library's docs call it (eval mode first, as they say)."""
    model = build(f"tests/byo_models.py:{name}").module.eval()
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(model, (torch.randn(1, 3, *size),), str(path), input_names=[input_name],
                      output_names=output_names, opset_version=17, do_constant_folding=True, dynamo=False,
                      dynamic_axes={input_name: axes, output_names[0]: axes} if dynamic else None)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("foreign_data")
    return labelled_folder(root / "shapes"), odd_images(root / "images")


def facts(cli, path: Path, *options: str) -> dict:
    code, out, err = cli("info", path, "--json", *options)
    assert code == 0, err
    info = json.loads(out)
    assert info["stored_card"] is False
    return {f["name"]: (f["value"], f["source"]) for f in info["facts"]}


def every_verb(cli, path: Path, name: str, data, tmp_path: Path, *options: str) -> dict[str, float]:
    """predict, bench, quantize int8 (calibrated, `--mean/--std`), verify --reference, eval; the figures."""
    labelled, images = data
    code, _, err = cli("predict", path, *images.values(), "-o", tmp_path / "masks", *IMAGENET, *options)
    assert code == 0, err
    for image, size in ODD_SIZES.items():
        assert mask_size(tmp_path / "masks" / image.replace(".png", "_mask.png")) == size
    predictor = Predictor(path, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                          **{k.lstrip("-").replace("-", "_"): int(v) for k, v in zip(options[::2], options[1::2])})
    rgb = load_image(images["photo.png"])
    source = f"tests/byo_models.py:{name}"
    figures = {"predict_vs_torch": float(np.mean(predictor.predict(rgb) == _torch_labels(source, predictor.card, rgb)))}

    code, out, err = cli("bench", path, "--no-torch", "--runs", "2", "--warmup", "1", "--json", *IMAGENET, *options)
    assert code == 0, err
    assert [r["status"] for r in json.loads(out)["rows"]] == ["ok"]

    int8 = tmp_path / "int8.onnx"
    code, out, err = cli("quantize", path, "--precision", "int8", "--calib", labelled, "-o", int8, "--json",
                         *IMAGENET, *options)
    assert code in (0, 1), err  # random weights: the int8 preset may fail; the file is written and measured
    quantized = json.loads(out)
    assert quantized["calibration"]["images"] == 12 and quantized["calibration"]["quantized_convs"] > 0
    figures["int8_agreement"] = quantized["agreement"]["argmax_agreement"]

    code, out, err = cli("verify", int8, "--reference", path, "--images", labelled / "JPEGImages", "--json",
                         *IMAGENET, *options)
    assert code in (0, 1), err
    figures["verify_agreement"] = json.loads(out)["results"][0]["argmax_agreement"]

    code, out, err = cli("eval", path, "--data", labelled, "--json", *IMAGENET, *options)
    assert code == 0, err
    scores = json.loads(out)
    assert scores["images"] == 6 and len(scores["models"][0]["per_class_iou"]) == 4
    figures["miou"] = scores["models"][0]["miou"]
    return figures


# -- Hugging Face transformers (main venv) -----------------------------------------------------
def test_hugging_face_segformer_export(cli, data, tmp_path):
    pytest.importorskip("transformers")
    path = library_export("segformer", tmp_path / "segformer.onnx", input_name="pixel_values", output_names=["logits"])
    found = facts(cli, path)
    assert found["output_stride"] == (4, "probe") and found["input_name"] == ("pixel_values", "graph")
    assert found["classes"][0] == ["class_0", "class_1", "class_2", "class_3"]
    # Its logits are at 1/4: the Predictor upsamples them; sides are padded to SegFormer's 32.
    figures = every_verb(cli, path, "segformer", data, tmp_path / "verbs", "--size-divisor", "32")
    assert figures["predict_vs_torch"] >= 0.999
    assert figures["int8_agreement"] >= 0.95 and figures["verify_agreement"] >= 0.95
    # The same network in PyTorch (same builder, same seed) scores the same on the labelled folder.
    code, out, err = cli("eval", path, "--data", data[0], "--torch", "tests/byo_models.py:segformer", "--json",
                         "--size-divisor", "32")
    assert code == 0, err
    scores = [m["miou"] for m in json.loads(out)["models"]]
    assert scores[0] == pytest.approx(scores[1], abs=1e-6) == figures["miou"]


# -- segmentation_models_pytorch (.venv-tv) ----------------------------------------------------
@pytest.mark.byo
@pytest.mark.parametrize("name, divisor", [("smp_unet", 1), ("smp_fpn", 32), ("smp_deeplabv3plus", 16)])
def test_smp_export(cli, data, tmp_path, name, divisor):
    pytest.importorskip("segmentation_models_pytorch")
    path = library_export(name, tmp_path / f"{name}.onnx", input_name="input", output_names=["output"])
    found = facts(cli, path)
    assert found["output_stride"] == (1, "probe") and found["layout"] == ("NCHW", "graph")
    # The probe finds the smallest power of two whose multiples run: smp's FPN needs 32, its
    # DeepLabV3+ (output stride 16) 16, its Unet (which interpolates to each skip) any size.
    assert found["size_divisor"] == (divisor, "probe")
    figures = every_verb(cli, path, name, data, tmp_path / "verbs")
    assert figures["predict_vs_torch"] >= 0.999
    assert figures["int8_agreement"] >= 0.9 and figures["verify_agreement"] >= 0.9


# -- torchvision, exported with a static shape (.venv-tv) --------------------------------------
@pytest.mark.byo
def test_torchvision_static_export(cli, data, tmp_path):
    pytest.importorskip("torchvision")
    path = library_export("torchvision_deeplabv3", tmp_path / "deeplabv3.onnx", input_name="input",
                          output_names=["out", "aux"], size=(96, 128), dynamic=False)
    found = facts(cli, path)
    assert found["dynamic"] == (False, "graph") and found["input_size"] == ([96, 128], "graph")
    assert found["output_name"] == ("out", "graph")  # the first output: torchvision's "out", not "aux"
    # A static model takes 96 x 128 only: smaller images are padded to it, larger ones tiled.
    figures = every_verb(cli, path, "torchvision_deeplabv3", data, tmp_path / "verbs")
    assert figures["predict_vs_torch"] >= 0.999
    assert figures["int8_agreement"] >= 0.9 and figures["verify_agreement"] >= 0.9
