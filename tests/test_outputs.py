"""No run overwrites its own inputs, nor a file segedge did not write (issue 15, point 1).

The rules (`runtimes.guards.outputs`) on their own, then every verb that writes, from the command line:
each refusal is one line, exit 2, before any work, with every file as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from runtimes.errors import UsageError
from runtimes.guards.outputs import check_outputs, png_info, would_be_read, written_by_segedge
from tests.hostile import TINY, assert_refused, files_under
from tests.tiny_models import build

USER_BYTES = b"the user's own file\n"


def photo(path: Path, seed: int = 0, size=(40, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), np.uint8)).save(path)
    return path


def users_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(USER_BYTES)
    return path


# -- the rules -------------------------------------------------------------------------------------
def test_an_output_that_is_an_input_by_any_name_is_refused(tmp_path):
    weights = users_file(tmp_path / "w.pt")
    (tmp_path / "link.pt").symlink_to(weights)
    os.link(weights, tmp_path / "hard.pt")
    (tmp_path / "sub").mkdir()
    for alias in (weights, tmp_path / "link.pt", tmp_path / "hard.pt", tmp_path / "sub" / ".." / "w.pt"):
        with pytest.raises(UsageError, match=f"the output {alias} is --weights of this run; choose another"):
            check_outputs([alias], [("--weights", weights)], overwrite=True)  # --overwrite does not make it right


def test_in_place_needs_overwrite_and_is_reported(tmp_path):
    model = users_file(tmp_path / "m.onnx")
    with pytest.raises(UsageError, match="is the model: pass --overwrite to replace it once the result passes"):
        check_outputs([model], [("the model", model)], in_place=("the model",))
    assert check_outputs([model], [("the model", model)], overwrite=True, in_place=("the model",)) == [model]


def test_a_file_segedge_did_not_write_is_replaced_only_with_overwrite(tmp_path):
    theirs = users_file(tmp_path / "a_mask.png")
    with pytest.raises(UsageError, match="a_mask.png exists and was not written by segedge; pass --overwrite"):
        check_outputs([theirs], [])
    assert check_outputs([theirs], [], overwrite=True) == []
    assert check_outputs([tmp_path / "new.png"], []) == []  # not there yet: nothing to lose


def test_segedge_recognises_its_own_files(tmp_path, hostile_model):
    mask = tmp_path / "a_mask.png"
    Image.new("P", (4, 4)).save(mask, pnginfo=png_info())
    plain = photo(tmp_path / "a.png")
    (tmp_path / "a_proba.npy").write_bytes(b"x")
    (tmp_path / "b_proba.npy").write_bytes(b"x")  # no segedge mask beside it
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text('{"schema": "segedge.report.run/1"}')
    (report / "report.md").write_text("# report")
    (tmp_path / "report.md").write_text("# the user's notes")
    assert written_by_segedge(hostile_model)  # its card
    assert written_by_segedge(mask) and not written_by_segedge(plain)
    assert written_by_segedge(tmp_path / "a_proba.npy") and not written_by_segedge(tmp_path / "b_proba.npy")
    assert written_by_segedge(report / "report.md") and not written_by_segedge(tmp_path / "report.md")
    assert not written_by_segedge(users_file(tmp_path / "x.onnx"))  # not even a protobuf
    import onnx

    foreign = onnx.load(str(hostile_model))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    assert not written_by_segedge(tmp_path / "foreign.onnx")  # a valid ONNX file, without a card


def test_would_be_read_follows_the_scan(tmp_path):
    images = {".png", ".jpg"}
    assert would_be_read(tmp_path / "a_mask.png", tmp_path, False, images)
    assert not would_be_read(tmp_path / "sub" / "a_mask.png", tmp_path, False, images)
    assert would_be_read(tmp_path / "sub" / "a_mask.png", tmp_path, True, images)
    assert not would_be_read(tmp_path / "a_proba.npy", tmp_path, True, images)


# -- the verbs -------------------------------------------------------------------------------------
def test_predict_into_its_own_input_folder_is_refused(cli, hostile_dir, hostile_model):
    """The issue's first case: `predict photos/ -o photos/` with the user's a_mask.png among the photos."""
    photos = hostile_dir / "photos"
    photo(photos / "a.png")
    theirs = users_file(photos / "a_mask.png")
    line = assert_refused(cli, hostile_dir, ["predict", hostile_model, photos, "-o", photos], 2,
                          f"would be written into {photos}, which predict reads images from")
    assert "a_mask.png" in line and theirs.read_bytes() == USER_BYTES
    assert_refused(cli, hostile_dir, ["predict", hostile_model, hostile_dir, "-r", "-o", photos], 2,
                   "which predict reads images from")


def test_predict_keeps_the_users_files_and_replaces_its_own(cli, hostile_dir, hostile_model):
    source = photo(hostile_dir / "in" / "a.png")
    out = hostile_dir / "masks"
    theirs = users_file(out / "a_mask.png")
    assert_refused(cli, hostile_dir, ["predict", hostile_model, source, "-o", out], 2,
                   "a_mask.png exists and was not written by segedge; pass --overwrite")
    assert theirs.read_bytes() == USER_BYTES
    assert cli("predict", hostile_model, source, "-o", out, "--overwrite", "--proba")[0] == 0
    assert written_by_segedge(theirs) and written_by_segedge(out / "a_proba.npy")
    again = cli("predict", hostile_model, source, "-o", out, "--proba")  # its own files: a rerun replaces them
    assert again[0] == 0, again[2]
    # A file named on its own is all predict reads: its folder may take the mask.
    assert cli("predict", hostile_model, source, "-o", source.parent)[0] == 0


def test_export_never_writes_over_the_checkpoint(cli, hostile_dir):
    """The issue's second case: `export unet --weights unet.pt -o unet.pt`."""
    weights = hostile_dir / "tiny.pt"
    torch.save(build().state_dict(), weights)
    before = weights.read_bytes()
    for output in (weights, hostile_dir / "sub" / ".." / "tiny.pt"):
        assert_refused(cli, hostile_dir, ["export", TINY, "--weights", weights, "-o", output, "--overwrite"], 2,
                       "is --weights of this run")
    assert_refused(cli, hostile_dir, ["export", TINY, "-o", "tests/tiny_models.py"], 2,
                   "is the model's source file of this run")
    assert weights.read_bytes() == before


def test_export_over_a_foreign_file_needs_overwrite(cli, hostile_dir):
    theirs = users_file(hostile_dir / "model.onnx")
    args = ["export", TINY, "--input-size", "32x32", "--exporter", "torchscript", "--no-simplify", "-o", theirs]
    assert_refused(cli, hostile_dir, args, 2, "model.onnx exists and was not written by segedge")
    assert cli(*args, "--overwrite")[0] == 0
    assert written_by_segedge(theirs)
    assert cli(*args)[0] == 0  # now segedge's own: replaced without --overwrite


def test_quantize_in_place_only_with_overwrite_and_only_when_it_passes(cli, hostile_dir, hostile_model, monkeypatch):
    """The issue's third case: `quantize m.onnx -o m.onnx` replaced the fp32 file with an int8 one that then failed."""
    import shutil

    model = hostile_dir / "m.onnx"
    shutil.copyfile(hostile_model, model)
    fp32 = model.read_bytes()
    assert_refused(cli, hostile_dir, ["quantize", model, "--precision", "fp16", "-o", model], 2,
                   "is the model being converted: pass --overwrite")
    import segedge.quantize.run

    monkeypatch.setattr(segedge.quantize.run, "judge", lambda agreement, tolerance: ["argmax agreement 0.5 < 0.99"])
    code, _, err = cli("quantize", model, "--precision", "fp16", "-o", model, "--overwrite")
    assert code == 1 and err.strip().splitlines()[-1] == (
        f"segedge: error: {model} kept as it was: its fp16 conversion fails the preset "
        "(argmax agreement 0.5 < 0.99); write it elsewhere with -o to inspect it")
    assert model.read_bytes() == fp32 and files_under(hostile_dir) == ["m.onnx", "tmp"]
    monkeypatch.undo()
    code, _, err = cli("quantize", model, "--precision", "fp16", "-o", model, "--overwrite")
    assert code == 0, err
    from runtimes.backends.onnxruntime_session import open_session

    assert open_session(model).card.precision.value == "fp16"


def test_report_into_a_folder_with_foreign_files_is_refused(cli, hostile_dir, hostile_model):
    folder = hostile_dir / "report"
    users_file(folder / "report.md")
    assert_refused(cli, hostile_dir, ["report", hostile_model, "-o", folder, "--precisions", "fp32",
                                      "--runtimes", "onnxruntime", "--runs", "1", "--warmup", "0"], 2,
                   "report.md exists and was not written by segedge")
