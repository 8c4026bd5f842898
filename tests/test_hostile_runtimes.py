"""Hostile input to the second wave: the OpenVINO runtime (ONNX files and IRs), `--weights demo` and
the data a card's training record names, the card options of foreign models, the Ray engine's
options, `--overwrite`. The rules of tests/hostile.py hold: one `segedge: error:` line, exit 2 for
a malformed command line and 1 for a bad file, and nothing written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from exporters.card_io import embed_card, read_card_from_proto
from tests.hostile import TINY, assert_refused, valid_png
from tests.test_hostile_models import CASES as HOSTILE_MODEL_CASES
from tests.test_hostile_models import hostile_files

pytest.importorskip("openvino")


def image(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    valid_png(folder / "photo.png")
    return folder / "photo.png"


# -- malformed options of the new runtimes and options -------------------------------------------
USAGE = [
    (["predict", "{model}", "{image}", "--runtime", "tflite"], "--runtime"),
    (["predict", "{model}", "{image}", "--runtime", "openvino", "--openvino-hint", "f64"], "precision hint"),
    (["predict", "{model}", "{image}", "--runtime", "openvino", "--provider", "cuda"], "runs on OpenVINO's CPU"),
    (["predict", "{model}", "{image}", "--layout", "NCWH"], "--layout must be NCHW or NHWC"),
    (["predict", "{model}", "{image}", "--output-kind", "softmax"], "--output-kind must be one of"),
    (["predict", "{model}", "{image}", "--output-name", "nothere"], "has no output named 'nothere'"),
    (["predict", "{model}", "{image}", "--classes", "sky,road"], "2 classes were named, but tiny.onnx outputs 4"),
    (["predict", "{model}", "{image}", "--runtime", "openvino", "--classes", "sky,road"], "outputs 4 channels"),
    (["predict", "{model}", "{image}", "--size-divisor", "0"], "--size-divisor"),
    (["predict", "{model}", "{image}", "--mean", "0.5,0.5"], "three comma-separated numbers"),
    (["predict", "{model}", "{image}", "--engine", "spark"], "--engine"),
    (["predict", "{model}", "{image}", "--engine", "ray", "--workers", "0"], "--workers"),
    (["predict", "{model}", "{image}", "--threshold", "1.5"], "--threshold"),
    (["bench", "{model}", "--no-torch", "--runtime", "openvino", "--openvino-hint", "fp8"], "--openvino-hint"),
    (["quantize", "{model}", "--precision", "int8", "--for", "tensorrt"], "--for"),
    (["quantize", "{model}", "--precision", "fp16", "--for", "openvino"], "makes int8 (NNCF)"),
    (["quantize", "{model}", "--precision", "int8", "--for", "openvino", "--calib", "{folder}", "-o", "{out}.onnx"],
     "name the output .xml"),
    (["export", TINY, "--weights", "demo", "-o", "{out}.onnx"], "--weights demo trains zoo models only"),
]


@pytest.mark.parametrize("args, message", USAGE, ids=[" ".join(a[2:])[:50] or a[0] for a, _ in USAGE])
def test_malformed_second_wave_options_exit_2(cli, hostile_dir, hostile_model, args, message):
    photo = image(hostile_dir / "in")
    filled = [a.format(model=hostile_model, image=photo, folder=photo.parent, out=hostile_dir / "out") for a in args]
    assert_refused(cli, hostile_dir, filled, 2, message)


# -- hostile ONNX files and IRs on the OpenVINO runtime -----------------------------------------
@pytest.mark.parametrize("case", HOSTILE_MODEL_CASES)
def test_hostile_models_on_openvino_are_one_line_exit_1(cli, hostile_dir, case):
    (hostile_dir / "files").mkdir()
    model_dir, cases = hostile_files(hostile_dir / "files")
    make, message = cases[case]
    path = model_dir / "model.onnx"
    make(path)
    photo = image(hostile_dir / "in")
    assert_refused(cli, hostile_dir, ["predict", path, photo, "-o", hostile_dir / "out", "--runtime", "openvino"], 1, "")
    assert_refused(cli, hostile_dir, ["bench", path, "--no-torch", "--runtime", "openvino", "--input-size", "8x8",
                                      "--runs", "1"], 1, "")


def _ir(folder: Path, model: Path) -> Path:
    import openvino as ov

    folder.mkdir(parents=True, exist_ok=True)
    xml = folder / "model.xml"
    ov.save_model(ov.convert_model(str(model)), str(xml))
    return xml


IR_CASES = {
    "random bytes": (lambda xml, bin_: (xml.write_bytes(np.random.default_rng(0).bytes(512)), bin_.write_bytes(b"\0" * 64)),
                     "OpenVINO cannot read it"),
    "empty xml": (lambda xml, bin_: (xml.write_bytes(b""), bin_.write_bytes(b"\0" * 64)), "OpenVINO cannot read it"),
    "entity bomb": (lambda xml, bin_: (xml.write_text(
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {n} "{("&" + p + ";") * 10}">' for p, n in zip("abcdefg", "bcdefgh"))
        + ']><net name="&h;"/>'), bin_.write_bytes(b"\0" * 64)), "OpenVINO cannot read it"),
    "missing .bin": (lambda xml, bin_: bin_.unlink(), "not found"),
    "truncated .bin": (lambda xml, bin_: bin_.write_bytes(bin_.read_bytes()[:100]), "OpenVINO cannot read it"),
}


@pytest.mark.parametrize("case", list(IR_CASES))
def test_hostile_openvino_irs_are_one_line_exit_1(cli, hostile_dir, hostile_model, case):
    xml = _ir(hostile_dir / "ir", hostile_model)
    make, message = IR_CASES[case]
    make(xml, xml.with_suffix(".bin"))
    photo = image(hostile_dir / "in")
    assert_refused(cli, hostile_dir, ["predict", xml, photo, "-o", hostile_dir / "out", "--runtime", "openvino"], 1,
                   message)
    assert_refused(cli, hostile_dir, ["info", xml], 1, "")


# -- demo weights: the data a card's training record names ---------------------------------------
def _with_training(model: Path, folder: Path, training: dict) -> Path:
    proto = onnx.load(str(model))
    card = read_card_from_proto(proto)
    assert card is not None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo.onnx"
    onnx.save(embed_card(proto, card.with_overrides(training=training)), str(path))
    return path


GOOD_DATASET = {"name": "shapes", "version": 2, "train": 8, "val": 4, "size": [32, 32], "seed": 1}
TRAINING_RECORDS = {
    "another dataset": ({"dataset": {**GOOD_DATASET, "name": "imagenet"}}, "names no dataset segedge can make"),
    "a future data version": ({"dataset": {**GOOD_DATASET, "version": 99}}, "version 99 of the shapes data"),
    "not a number": ({"dataset": {**GOOD_DATASET, "train": "many"}}, "bad dataset entry"),
    "a billion images": ({"dataset": {**GOOD_DATASET, "train": 10**9}}, "more than any segedge recipe makes"),
    "images of 100000 px": ({"dataset": {**GOOD_DATASET, "size": [100000, 100000]}}, "more than any segedge recipe"),
}


@pytest.mark.parametrize("case", list(TRAINING_RECORDS))
def test_a_hostile_training_record_is_refused_before_writing_data(cli, hostile_dir, hostile_model, monkeypatch, case):
    """A card's training record is the file's data: it must not make segedge write a dataset it asks for."""
    cache = hostile_dir / "cache"
    monkeypatch.setenv("SEGEDGE_CACHE", str(cache))
    training, message = TRAINING_RECORDS[case]
    model = _with_training(hostile_model, hostile_dir / "model", training)
    assert_refused(cli, hostile_dir, ["quantize", model, "--precision", "int8", "-o", hostile_dir / "q.onnx"], 1, message)
    assert_refused(cli, hostile_dir, ["eval", model], 1, message)
    assert not cache.exists() or not any((cache / "data").glob("shapes-*"))


# -- --overwrite never makes an input an output ----------------------------------------------------
def test_overwrite_does_not_let_a_run_write_over_its_inputs(cli, hostile_dir, hostile_model):
    photos = hostile_dir / "photos"
    image(photos)
    model = hostile_dir / "m.onnx"
    shutil.copyfile(hostile_model, model)
    assert_refused(cli, hostile_dir, ["predict", model, photos, "-o", photos, "--overwrite"], 2,
                   "which predict reads images from")
    (hostile_dir / "photo_mask.png").symlink_to(photos / "photo.png")  # the output's name leads to the input
    assert_refused(cli, hostile_dir, ["predict", model, photos / "photo.png", "-o", hostile_dir, "--overwrite"], 2,
                   "is an input image of this run")
    assert_refused(cli, hostile_dir, ["quantize", model, "--precision", "int8", "--calib", photos,
                                      "-o", photos / "photo.png", "--overwrite"], 2, "is a calibration image")
