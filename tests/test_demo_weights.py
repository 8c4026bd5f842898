"""`--weights demo`: recipes per zoo model, the card's training record, and the data it brings along.

The end-to-end tests use the suite's trained U-Net (`segedge.train.recipe.SMALL`, trained once per
run by `demo_models`) registered as unet's demo recipe, so `--weights demo` finds it in the cache:
the plumbing is what is tested here; `tests/test_train.py` holds the recipes' hashes and figures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runtimes.backends import RuntimeSpec
from runtimes.model.card import ModelCard
from runtimes.errors import UsageError
from runtimes.backends.onnxruntime_session import open_session
from segedge.data.demo import (
    dataset_key,
    dataset_record,
    is_demo,
    recorded_dataset,
    with_demo_data,
)
from segedge.data.shapes import ShapesConfig
from segedge.train import demo
from segedge.train.recipe import SMALL

from .hostile import one_error_line

REQUIRED = ("deeplabv3plus_resnet50", "deeplabv3plus_mobilenetv2", "pspnet_resnet50", "unet", "hrnet_w18_ocr",
            "lraspp_mobilenet_v3_large", "fcn8s")


def _cache(demo_models) -> Path:
    return demo_models.trained.folder.parent.parent  # <cache>/trained/<key>


@pytest.fixture(autouse=True)
def demo_unet(request, monkeypatch):
    """SMALL as unet's demo recipe, in the cache the suite trained it into (for the tests that need it)."""
    if not {"demo_models", "demo_export"} & set(request.fixturenames):
        return
    models = request.getfixturevalue("demo_models")
    monkeypatch.setitem(demo.RECIPES, "unet", SMALL)
    monkeypatch.setenv("SEGEDGE_CACHE", str(_cache(models)))


@pytest.fixture(scope="module")
def demo_export(demo_models, tmp_path_factory) -> Path:
    """`segedge export unet --weights demo` (torchscript: quick), once for this module."""
    from segedge.cli import main

    path = tmp_path_factory.mktemp("demo_export") / "unet.onnx"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(demo.RECIPES, "unet", SMALL)
        patch.setenv("SEGEDGE_CACHE", str(_cache(demo_models)))
        code = main(["export", "unet", "--weights", "demo", "--input-size", "64x64", "--exporter", "torchscript",
                     "-o", str(path)])
    assert code == 0
    return path


def card_of(path: Path) -> ModelCard:
    card = open_session(path).card
    assert card is not None
    return card


# -- the recipe table ----------------------------------------------------------------------------
def test_every_model_the_issue_names_has_a_recipe():
    assert set(REQUIRED) <= set(demo.RECIPES)
    assert demo.demo_recipe("deeplabv3plus") is demo.RECIPES["deeplabv3plus_resnet50"]  # aliases resolve
    assert demo.demo_recipe("lraspp") is demo.RECIPES["lraspp_mobilenet_v3_large"]
    for name, recipe in demo.RECIPES.items():
        assert recipe.model == name and recipe.key().startswith(f"{name}-")
        assert recipe.data.val >= 100 and recipe.threads == 2 and recipe.channels_last and recipe.autocast == "auto"


def test_no_recipe_is_a_usage_error():
    with pytest.raises(UsageError, match="upernet_resnet50 has no demo recipe; models with one: deeplabv3plus"):
        demo.demo_recipe("upernet")
    with pytest.raises(UsageError, match="trains zoo models only"):
        demo.demo_recipe("tests/tiny_models.py:build")


def test_demo_is_a_keyword_not_a_file():
    assert is_demo("demo") and is_demo(Path("demo")) and not is_demo(None) and not is_demo(Path("demo.pt"))


# -- the data a card's record brings along ---------------------------------------------------------
def test_recorded_dataset_is_written_again_from_its_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGEDGE_CACHE", str(tmp_path))
    config = ShapesConfig(train=3, val=2, size=(32, 32), seed=5)
    card = ModelCard(name="m", training={"dataset": dataset_record(config)})
    root = recorded_dataset(card)
    assert root == tmp_path / "data" / dataset_key(config)
    first = sorted((p.name, p.read_bytes()) for p in (root / "JPEGImages").iterdir())
    assert len(first) == 5
    for p in (root / "JPEGImages").iterdir():
        p.unlink()
    (root / "ImageSets" / "Segmentation" / "val.txt").unlink()  # a damaged cache entry is made again
    assert recorded_dataset(card) == root
    assert sorted((p.name, p.read_bytes()) for p in (root / "JPEGImages").iterdir()) == first
    assert with_demo_data(card, None, None) == (root, root)
    assert with_demo_data(card, tmp_path, None) == (tmp_path, root)
    assert with_demo_data(ModelCard(name="m"), None, None) == (None, None)  # no record: nothing filled in


def test_a_record_of_an_unknown_generator_version_is_refused(tmp_path, monkeypatch):
    from runtimes.errors import CardError

    monkeypatch.setenv("SEGEDGE_CACHE", str(tmp_path))
    newer = {**dataset_record(ShapesConfig()), "version": 99}
    with pytest.raises(CardError, match="version 99 of the shapes data"):
        recorded_dataset(ModelCard(name="m", training={"dataset": newer}))
    assert not (tmp_path / "data").exists()


# -- end to end on the suite's trained U-Net -----------------------------------------------------
def test_export_records_how_the_weights_were_made(demo_export, demo_models):
    card = card_of(demo_export)
    record = card.training
    assert record["weights"] == "demo" and record["recipe"] == SMALL.key() == demo_models.trained.folder.name
    assert record["held_out_miou"] == pytest.approx(demo_models.trained.metrics["miou"], abs=1e-4)
    assert record["dataset"] == json.loads(json.dumps(dataset_record(SMALL.data))) and record["held_out_split"] == "val"
    assert card.classes == SMALL.data.classes and card.build_kwargs == {**SMALL.build_kwargs, "num_classes": len(SMALL.data.classes)}
    assert recorded_dataset(card) == demo_models.data


def test_quantize_calibrates_and_measures_on_the_demo_data(demo_export, demo_models, tmp_path, cli):
    code, out, err = cli("quantize", demo_export, "--precision", "int8", "-o", tmp_path / "q.onnx", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["calibration"]["images"] == 32  # of the train split
    agreement = result["agreement"]
    assert agreement["images"] == SMALL.data.val and str(demo_models.data) in agreement["source"]
    assert agreement["miou_drop_points"] <= 1.0
    assert card_of(tmp_path / "q.onnx").training == card_of(demo_export).training  # the record travels on


def test_eval_without_data_scores_the_held_out_split(demo_export, demo_models, cli):
    code, out, err = cli("eval", demo_export, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["images"] == SMALL.data.val and result["data"] == str(demo_models.data)
    assert result["models"][0]["miou"] == pytest.approx(demo_models.trained.metrics["miou"], abs=2e-3)


def test_eval_torch_with_demo_weights_needs_no_file_and_no_data(demo_models, cli):
    code, out, err = cli("eval", "--torch", "unet", "--weights", "demo", "--json")
    assert code == 0, err
    assert json.loads(out)["models"][0]["miou"] == pytest.approx(demo_models.trained.metrics["miou"], abs=1e-6)


def test_verify_rebuilds_the_recorded_weights_and_compares_on_held_out_images(demo_export, cli):
    code, out, err = cli("verify", demo_export, "--json")  # no --weights: random weights would fail fp32
    assert code == 0, err
    result = json.loads(out)
    assert result["results"][0]["images"] == 32  # of the held-out split: generated inputs are no images
    assert any("demo weights the card records" in note for note in result["notes"])


def test_eval_without_data_or_demo_weights_says_what_to_give(tiny_export, cli):
    code, _, err = cli("eval", tiny_export("32x32"))
    assert code == 2 and "--data: give a labelled folder" in one_error_line(err)


def test_export_demo_weights_keep_their_class_count(cli, demo_models, tmp_path):
    code, _, err = cli("export", "unet", "--weights", "demo", "--num-classes", "3", "-o", tmp_path / "x.onnx")
    assert code == 2 and "drop --num-classes" in one_error_line(err)
    assert not os.path.exists(tmp_path / "x.onnx")


def test_info_says_how_the_weights_were_made(demo_export, cli):
    code, out, err = cli("info", demo_export)
    assert code == 0, err
    assert f"trained by segedge: recipe {SMALL.key()}, shapes v1 (1500 train / 100 held-out images)" in out + err


def test_report_on_demo_weights_needs_no_calib_and_no_data(demo_export, demo_models, tmp_path):
    from segedge.report import ReportRequest, run_report

    report = run_report(ReportRequest(target=str(demo_export), output=tmp_path, precisions=("fp32", "int8"),
                                      runtimes=("onnxruntime", "torch"), spec=RuntimeSpec(threads=1), warmup=0, runs=2))
    assert report.data == str(demo_models.data) and report.calibration == str(demo_models.data)
    assert report.weights.startswith(f"demo: {SMALL.key()}")
    by = {r.label: r for r in report.rows}
    eager, int8 = by["fp32 / cpu / torch"], by["int8 / cpu / onnxruntime"]  # eager: the recorded weights
    assert eager.miou == pytest.approx(demo_models.trained.metrics["miou"], abs=2e-3) and eager.miou_lost == 0
    assert int8.miou_lost is not None and int8.miou_lost <= 1.0
    assert report.best is not None and "mIoU >= PyTorch fp32's" in report.best_reason
    # Agreement with PyTorch fp32 is measured on the held-out images, not on the generated input:
    # the trained model keeps int8 within its preset there (SMALL's int8 agreed on 99.3% of pixels).
    assert report.agreement_on == f"the {SMALL.data.val} labelled images mIoU is measured on"
    assert eager.agreement is None or eager.agreement == 1.0
    assert int8.agreement is not None and 0.98 <= int8.agreement < 1.0 and int8.parity_ok
