"""`segedge eval`: mIoU, pixel accuracy and per-class IoU, models side by side, on a labelled folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from runtimes.imaging.palette import voc_palette
from segedge.data.labelled import labelled_pairs
from segedge.evaluate import evaluate
from tests.hostile import assert_refused


def write_pair(root, name: str, labels: np.ndarray, palette: bool) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    Image.fromarray(np.zeros((*labels.shape, 3), np.uint8)).save(root / "images" / f"{name}.png")
    mask = Image.fromarray(labels, mode="P" if palette else "L")
    if palette:
        mask.putpalette([c for rgb in voc_palette(256) for c in rgb])
    mask.save(root / "masks" / f"{name}.png")


@pytest.mark.parametrize("palette", [True, False])
def test_scores_against_hand_counts(tmp_path, palette):
    truth = np.zeros((4, 6), np.uint8)
    truth[:, 3:] = 1
    truth[0, 0] = 255  # ignored, whatever is predicted there
    write_pair(tmp_path, "a", truth, palette)
    predicted = np.zeros((4, 6), np.uint8)
    predicted[:, 2:] = 1  # column 2: 4 background pixels called class 1
    predicted[0, 0] = 1
    result = evaluate("fake", lambda rgb: predicted, labelled_pairs(tmp_path), num_classes=2)
    # background: 7 right of 11 labelled (+0 false); class 1: 12 right, 4 false positives.
    assert result.per_class_iou == pytest.approx((7 / 11, 12 / 16))
    assert result.miou == pytest.approx((7 / 11 + 12 / 16) / 2)
    assert result.pixel_accuracy == pytest.approx(19 / 23)
    assert result.images == 1


def test_eval_cli_models_side_by_side(demo_models, cli):
    code, stdout, err = cli("eval", demo_models.fp32, demo_models.fp16, demo_models.int8,
                                         "--data", demo_models.data, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["images"] == 100 and result["classes"] == ["background", "circle", "square", "triangle"]
    fp32, fp16, int8 = result["models"]
    # The Predictor and the training-time PyTorch evaluation prepare images the same way.
    assert fp32["miou"] == pytest.approx(demo_models.trained.metrics["miou"], abs=2e-3)
    assert abs(fp16["miou"] - fp32["miou"]) < 1e-3
    assert fp32["miou"] - int8["miou"] <= 0.01
    assert len(fp32["per_class_iou"]) == 4 and 0 < fp32["pixel_accuracy"] <= 1


def test_eval_cli_torch_row(demo_models, cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    trained = demo_models.trained
    args = ["eval", demo_models.fp32, "--data", demo_models.data, "--torch", trained.config.model,
            "--weights", trained.checkpoint]
    code, stdout, err = cli(*args, "--limit", "20", "--json")
    assert code == 0, err
    onnx_row, torch_row = json.loads(stdout)["models"]
    assert onnx_row["images"] == torch_row["images"] == 20
    assert torch_row["name"] == trained.config.model
    assert onnx_row["miou"] == pytest.approx(torch_row["miou"], abs=1e-3)
    code, stdout, err = cli(*args, "--limit", "2")  # the table
    assert code == 0, err
    assert "(PyTorch)" in stdout and "(fp32)" in stdout and "2 images" in stdout


def test_eval_cli_usage(hostile_dir, hostile_model, cli):
    assert_refused(cli, hostile_dir, ["eval", "--data", hostile_dir], 2, "give at least one ONNX model")
    assert_refused(cli, hostile_dir, ["eval", hostile_model, "--data", hostile_dir, "--weights", "w.pt"], 2,
                   "--weights goes with --torch")
    assert_refused(cli, hostile_dir, ["eval", hostile_model, "--data", hostile_dir / "nope"], 1, "expected JPEGImages")
