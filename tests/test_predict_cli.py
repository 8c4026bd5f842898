"""`segedge predict` in process (`main([...])`) and once as a real `python -m segedge` subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtimes import Predictor
from tests.predictor_models import PALETTE, scene

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(scene(40, 56, 1)).save(folder / "a.png")
    Image.fromarray(scene(33, 21, 2)).save(folder / "sub" / "b.jpg", quality=95)
    Image.fromarray(scene(17, 90, 3)).save(folder / "sub" / "deeper" / "c.tif")
    (folder / "notes.txt").write_text("not an image, and not an image extension: ignored")
    (folder / ".hidden.png").write_bytes(b"hidden files are skipped")
    return folder


def test_folder_gives_palette_pngs_of_each_images_size(cli, tmp_path, images, predictor_models):
    out = tmp_path / "out"
    code, stdout, err = cli("predict", predictor_models.multiclass, images, "-o", out)
    assert code == 0, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a_mask.png"]
    with Image.open(out / "a_mask.png") as mask:
        assert mask.mode == "P" and mask.size == (56, 40)
        assert tuple(mask.getpalette()[:12]) == tuple(c for rgb in PALETTE for c in rgb)
        labels = np.asarray(mask)
    np.testing.assert_array_equal(labels, Predictor(predictor_models.multiclass).predict(images / "a.png"))
    assert "1 of 1 images" in err and stdout == ""


def test_recursive_overlay_and_probabilities(cli, tmp_path, images, predictor_models):
    out = tmp_path / "out"
    code, _, err = cli("predict", predictor_models.multiclass, images, "-o", out, "--recursive", "--overlay", "--proba")
    assert code == 0, err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        "a_mask.png", "a_overlay.png", "a_proba.npy",
        "sub/b_mask.png", "sub/b_overlay.png", "sub/b_proba.npy",
        "sub/deeper/c_mask.png", "sub/deeper/c_overlay.png", "sub/deeper/c_proba.npy",
    ]  # no temporary files left behind
    probs = np.load(out / "sub" / "deeper" / "c_proba.npy")
    assert probs.shape == (4, 17, 90) and probs.dtype == np.float32
    with Image.open(out / "sub" / "deeper" / "c_mask.png") as mask:
        np.testing.assert_array_equal(np.asarray(mask), probs.argmax(axis=0))
    with Image.open(out / "a_overlay.png") as overlay:
        assert overlay.mode == "RGB" and overlay.size == (56, 40)


def test_bad_files_are_reported_skipped_and_exit_1(cli, tmp_path, images, predictor_models):
    (images / "broken.png").write_bytes(b"garbage")
    out = tmp_path / "out"
    code, _, err = cli("predict", predictor_models.multiclass, images, tmp_path / "missing.jpg", "-o", out)
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert [line for line in lines if "broken.png" in line] == [f"skipped: {images / 'broken.png'}: not an image (no decoder recognises its content)"]
    assert len([line for line in lines if "missing.jpg" in line]) == 1
    assert lines[-1] == "segedge: error: 2 of 3 images could not be read (listed above)"
    assert (out / "a_mask.png").is_file()  # the good image was still processed
    assert "Traceback" not in err


def test_tiles_mean_std_threshold_and_provider_options(cli, tmp_path, images, predictor_models):
    out = tmp_path / "out"
    code, _, err = cli("predict", predictor_models.no_card, images / "a.png", "-o", out,
                           "--tile", "32", "--overlap", "8", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25",
                           "--provider", "cpu", "--threads", "1")
    assert code == 0, err
    expected = Predictor(predictor_models.no_card, mean=(0.5,) * 3, std=(0.25,) * 3, tile_size=32, tile_overlap=8).predict(images / "a.png")
    with Image.open(out / "a_mask.png") as mask:
        np.testing.assert_array_equal(np.asarray(mask), expected)
    code, _, err = cli("predict", predictor_models.sigmoid, images / "a.png", "-o", out, "--threshold", "0.9")
    assert code == 0, err


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--mean", "1,2"], 2, "--mean '1,2' must be three comma-separated numbers"),
        (["--provider", "tpu"], 2, "tpu"),
        (["--tile", "0"], 2, "--tile"),
        (["--tile", "16", "--overlap", "12"], 2, "no room to advance"),
    ],
)
def test_bad_options_are_one_line_errors(cli, tmp_path, images, predictor_models, args, code, message):
    got, _, err = cli("predict", predictor_models.multiclass, images, "-o", tmp_path / "out", *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert got == code and len(lines) == 1 and lines[0].startswith("segedge: error:") and message in lines[0], err


def test_empty_folder_missing_model_and_clashing_names(cli, tmp_path, images, predictor_models):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("predict", predictor_models.multiclass, empty)
    assert code == 2 and "no images found" in err and "--recursive" in err
    code, _, err = cli("predict", tmp_path / "nope.onnx", images)
    assert code == 1 and "model file not found" in err
    Image.fromarray(scene(5, 5)).save(images / "a.jpg")
    code, _, err = cli("predict", predictor_models.multiclass, images / "a.png", images / "a.jpg", "-o", tmp_path / "o")
    assert code == 2 and "same output" in err


def test_python_dash_m_segedge_predict(tmp_path, images, predictor_models):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "segedge", "predict", str(predictor_models.multiclass), str(images), "-r", "-o", str(out)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "3 of 3 images segmented" in result.stderr
    with Image.open(out / "sub" / "b_mask.png") as mask:
        assert mask.size == (21, 33) and mask.mode == "P"


def test_a_quoted_glob_pattern_is_expanded_keeping_folders_below_its_first_wildcard(cli, tmp_path, images, predictor_models):
    out = tmp_path / "out"
    code, _, err = cli("predict", predictor_models.multiclass, f"{images}/**/*.[jt]*", "-o", out)
    assert code == 0, err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["sub/b_mask.png", "sub/deeper/c_mask.png"]  # a.png, notes.txt, .hidden.png: not matched
    assert "2 of 2 images" in err
    with Image.open(out / "sub" / "deeper" / "c_mask.png") as mask:
        np.testing.assert_array_equal(np.asarray(mask),
                                      Predictor(predictor_models.multiclass).predict(images / "sub" / "deeper" / "c.tif"))


@pytest.mark.parametrize("pattern, output, message", [
    ("*.jpg", "out", "no images match"),  # matches nothing (images/ holds a.png only)
    ("*.png", ".", "would be matched by"),  # a_mask.png would match *.png next time
])
def test_a_glob_pattern_that_matches_nothing_or_its_own_outputs_is_refused(cli, tmp_path, images, predictor_models,
                                                                        pattern, output, message):
    before = sorted(p.name for p in images.iterdir())
    code, _, err = cli("predict", predictor_models.multiclass, images / pattern, "-o", images / output)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert sorted(p.name for p in images.iterdir()) == before  # nothing written
