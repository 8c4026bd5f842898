"""Hostile input to `segedge quantize` and `segedge eval`: bad arguments, calibration folders that
are empty or hold no images, unreadable calibration images, labelled folders with bad masks.

The rules of tests/hostile.py hold: one `segedge: error:` line, exit 2 for a malformed command
line and 1 for a bad file, and no file left behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hostile import assert_refused, valid_png


def images_in(folder: Path, count: int, size=(40, 30)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8)).save(folder / f"img_{i}.png")
    return folder


def labelled_folder(root: Path, mask_maker=None, count: int = 2) -> Path:
    """images/ + masks/ with `count` pairs; `mask_maker(path)` writes a hostile first mask."""
    images_in(root / "images", count)
    (root / "masks").mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.zeros((30, 40), np.uint8)).save(root / "masks" / f"img_{i}.png")
    if mask_maker is not None:
        mask_maker(root / "masks" / "img_0.png")
    return root


# -- quantize ---------------------------------------------------------------------------------------
def _empty(folder: Path) -> Path:
    folder.mkdir()
    return folder


def _text_only(folder: Path) -> Path:
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    (folder / "notes.md").write_text("# none")
    return folder


def _hidden_only(folder: Path) -> Path:
    folder.mkdir()
    (folder / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def _a_file(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_bytes(b"not a folder")
    return folder


def _corrupt_image(folder: Path) -> Path:
    images_in(folder, 3)
    (folder / "img_1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    return folder


def _bomb_image(folder: Path) -> Path:
    from tests.test_hostile_images import png_header_only

    images_in(folder, 3)
    (folder / "img_2.png").write_bytes(png_header_only(100_000, 100_000))
    return folder


CALIBRATION = {
    "missing": (lambda folder: folder, "not found"),
    "empty": (_empty, "holds no images"),
    "text files only": (_text_only, "holds no images"),
    "image bytes behind a .txt name": (_hidden_only, "holds no images"),
    "a file, not a folder": (_a_file, "not a folder"),
    "an undecodable image": (_corrupt_image, "img_1.png"),
    "a decompression bomb": (_bomb_image, "decompression-bomb"),
}


@pytest.mark.parametrize("case", list(CALIBRATION))
def test_hostile_calibration_folder(cli, hostile_dir, hostile_model, case):
    make, message = CALIBRATION[case]
    calib = make(hostile_dir / "calib")
    output = hostile_dir / "out" / "model_int8.onnx"
    assert_refused(cli, hostile_dir, ["quantize", hostile_model, "--precision", "int8", "--calib", calib,
                                         "--calib-count", "3", "-o", output], 1, message)


QUANTIZE_USAGE = [
    (["--precision", "bf16"], "--precision"),
    (["--precision", "int8"], "--calib"),
    (["--precision", "auto"], "--calib"),
    (["--precision", "fp16", "--calib-count", "0"], "--calib-count"),
    (["--precision", "fp16", "--budget", "-1"], "--budget"),
    (["--precision", "fp16", "--budget", "101"], "--budget"),
    (["--precision", "int8", "--method", "magic"], "--method"),
    (["--precision", "fp16", "--bogus"], "No such option"),
]


@pytest.mark.parametrize("extra, message", QUANTIZE_USAGE, ids=[" ".join(a) for a, _ in QUANTIZE_USAGE])
def test_quantize_malformed_options_exit_2(cli, hostile_dir, hostile_model, extra, message):
    assert_refused(cli, hostile_dir, ["quantize", hostile_model, "-o", hostile_dir / "q.onnx", *extra], 2, message)


def test_quantize_excluding_an_unknown_node_exits_2(cli, hostile_dir, hostile_model):
    calib = images_in(hostile_dir / "calib", 2)
    assert_refused(cli, hostile_dir, ["quantize", hostile_model, "--precision", "int8", "--calib", calib,
                                         "--calib-count", "2", "--exclude", "no_such_node", "-o", hostile_dir / "q.onnx"],
                   2, "no_such_node")


def test_quantize_a_hostile_or_missing_model_exits_1(cli, hostile_dir):
    bad = hostile_dir / "model.onnx"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    for model, message in ((bad, "model.onnx"), (hostile_dir / "missing.onnx", "not found"), (hostile_dir, "not a file")):
        assert_refused(cli, hostile_dir, ["quantize", model, "--precision", "fp16", "-o", hostile_dir / "q.onnx"], 1, message)


def test_quantize_with_a_hostile_labelled_folder(cli, hostile_dir, hostile_model):
    data = labelled_folder(hostile_dir / "data", lambda p: Image.new("RGB", (40, 30)).save(p))
    assert_refused(cli, hostile_dir, ["quantize", hostile_model, "--precision", "fp16", "--data", data,
                                         "-o", hostile_dir / "q.onnx"], 1, "one channel")


# -- eval ---------------------------------------------------------------------------------------------
MASKS = {
    "colour mask": (lambda p: Image.new("RGB", (40, 30)).save(p), "one channel"),
    "undecodable mask": (lambda p: p.write_bytes(b"not a png"), "not a readable mask"),
    "mask bomb": (lambda p: p.write_bytes(__import__("tests.test_hostile_images", fromlist=["x"]).png_header_only(10**5, 10**5)),
                  "decompression-bomb"),
    "mask of another size": (lambda p: Image.fromarray(np.zeros((7, 9), np.uint8)).save(p), "img_0"),
}


@pytest.mark.parametrize("case", list(MASKS))
def test_eval_with_hostile_masks(cli, hostile_dir, hostile_model, case):
    make, message = MASKS[case]
    data = labelled_folder(hostile_dir / "data", make)
    assert_refused(cli, hostile_dir, ["eval", hostile_model, "--data", data], 1, message)


def test_eval_with_a_hostile_image(cli, hostile_dir, hostile_model):
    data = labelled_folder(hostile_dir / "data")
    (data / "images" / "img_1.png").write_bytes(b"GIF89a" + bytes(20))
    assert_refused(cli, hostile_dir, ["eval", hostile_model, "--data", data], 1, "img_1.png")


EVAL_USAGE = [
    ([], "at least one ONNX model"),  # without --data, eval takes a demo card's held-out split
    (["--data", "DATA"], "at least one ONNX model"),
    (["MODEL", "--data", "DATA", "--limit", "0"], "--limit"),
    (["MODEL", "--data", "DATA", "--threads", "0"], "--threads"),
    (["MODEL", "--data", "DATA", "--weights", "w.pt"], "--weights goes with --torch"),
]


@pytest.mark.parametrize("args, message", EVAL_USAGE, ids=[" ".join(a) for a, _ in EVAL_USAGE])
def test_eval_malformed_options_exit_2(cli, hostile_dir, hostile_model, args, message):
    data = labelled_folder(hostile_dir / "data")
    args = [str(hostile_model) if a == "MODEL" else str(data) if a == "DATA" else a for a in args]
    assert_refused(cli, hostile_dir, ["eval", *args], 2, message)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: root, "expected JPEGImages/"),  # missing
        (lambda root: root.mkdir() or root, "expected JPEGImages/"),
        (lambda root: (images_in(root / "images", 2), (root / "masks").mkdir(), root)[2], "no image has a mask"),
    ],
    ids=["missing", "empty", "images without masks"],
)
def test_eval_with_an_unusable_folder_exits_1(cli, hostile_dir, hostile_model, make, message):
    data = make(hostile_dir / "data")
    assert_refused(cli, hostile_dir, ["eval", hostile_model, "--data", data], 1, message)


def test_eval_still_scores_a_good_folder(capsys, hostile_dir, hostile_model):
    from segedge.cli import main

    data = labelled_folder(hostile_dir / "data")
    photo = hostile_dir / "photo.png"
    valid_png(photo)
    assert main(["eval", str(hostile_model), "--data", str(data), "--json"]) == 0


def test_quantize_with_a_mask_of_another_size(cli, hostile_dir, hostile_model):
    data = labelled_folder(hostile_dir / "data", lambda p: Image.fromarray(np.zeros((7, 9), np.uint8)).save(p))
    assert_refused(cli, hostile_dir, ["quantize", hostile_model, "--precision", "fp16", "--data", data,
                                         "-o", hostile_dir / "q.onnx"], 1, "the mask is 9x7 pixels")


# -- export --precision: the same calibration checks, before any export work ----------------------
@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--precision", "bf16"], 2, "--precision"),
        (["--precision", "int8"], 2, "--calib"),
        (["--precision", "int8", "--calib", "EMPTY"], 1, "holds no images"),
        (["--precision", "auto", "--calib", "MISSING"], 1, "not found"),
    ],
    ids=["bf16", "int8 without --calib", "empty calibration folder", "missing calibration folder"],
)
def test_export_with_quantization_refuses_bad_calibration_early(cli, hostile_dir, monkeypatch, extra, code, message):
    import segedge.export.run

    monkeypatch.setattr(segedge.export.run, "export_onnx", lambda *a, **k: pytest.fail("exported before checking"))
    (hostile_dir / "empty").mkdir()
    extra = [str(hostile_dir / "empty") if a == "EMPTY" else str(hostile_dir / "missing") if a == "MISSING" else a
             for a in extra]
    assert_refused(cli, hostile_dir, ["export", "tests/tiny_models.py:build", "-o", hostile_dir / "out" / "m.onnx",
                                         *extra], code, message)
