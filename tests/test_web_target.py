"""`segedge export --target web`: the folder's page run in a real browser (Debian's headless Chromium), its masks
compared with the Predictor's.

The exported folder is served by its own serve.py (127.0.0.1, COOP/COEP); segedge's browser runner's page
(segedge/web/harness.html, served beside it) segments PNG images with the folder's segedge.js on onnxruntime-web's
WASM and posts the masks and scores back (segedge.web.browser, through tests/web_browser.py). Judged with runtimes.measure.parity's presets: the fp32 folder against the
Predictor on the same file (the fp32 preset: scores within 1e-4 of the range, masks 99.99%), the int8
folder against the Predictor on the fp32 file (the int8 preset). Models: the zoo's LR-ASPP
MobileNetV3 with its demo weights (trained once, cached), and a network exported by torch.onnx's TorchScript
exporter, with no card (its normalisation given by card options).

Needs chromium and npm (`.ci/run` installs chromium; npm fetches onnxruntime-web once per run); they
skip where absent, except under CI, where a missing one fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from exporters.targets.ort_web import PACKAGE, VERSION
from runtimes import Predictor
from runtimes.measure.parity import ParityAccumulator, compare_outputs, judge, preset
from runtimes.imaging.preprocess import at_input_resolution, from_model_output, to_model_input
from runtimes.backends.onnxruntime_session import open_session
from segedge.data import ShapesConfig, write_shapes_dataset
from tests.web_browser import CHROMIUM_FLAGS, decode, find_chromium, need, run_harness

ZOO = "lraspp_mobilenet_v3_large"
SIZES = [(96, 96), (61, 87), (100, 45)]  # the demo data's size, and two that need padding to the divisor



def segedge(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "segedge", *args], capture_output=True, text=True, timeout=900,
                          env=env, check=False)


@pytest.fixture(scope="module")
def ort_web(tmp_path_factory) -> Path:
    """onnxruntime-web, unpacked from `npm pack` once for the module's exports (--ort-web)."""
    npm = need("npm", shutil.which("npm"))
    need("chromium", find_chromium())
    folder = tmp_path_factory.mktemp("ort-web")
    subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", str(folder)],
                   check=True, capture_output=True, timeout=600)
    with tarfile.open(next(folder.glob("*.tgz"))) as tar:
        tar.extractall(folder, filter="data")
    return folder / "package"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[np.ndarray]:
    """Held-out shapes images (RGB uint8) at SIZES: what the demo model was trained on, at sizes it must pad."""
    data = write_shapes_dataset(tmp_path_factory.mktemp("shapes"), ShapesConfig(train=0, val=len(SIZES), size=(104, 104)))
    jpegs = sorted((data / "JPEGImages").glob("*.jpg"))
    return [np.asarray(Image.open(path).convert("RGB"))[:h, :w] for path, (h, w) in zip(jpegs, SIZES)]


def in_browser(folder: Path, images: list[np.ndarray], tmp_path: Path, **kwargs) -> tuple[dict, list[tuple]]:
    names = []
    for i, rgb in enumerate(images):
        Image.fromarray(rgb).save(folder / f"image{i}.png")
        names.append(f"image{i}.png")
    posted = run_harness(folder, "images=" + ",".join(names), tmp_path / "profile", **kwargs)
    return posted, [decode(result) for result in posted["results"]]


def predictor_scores(model: Path, rgb: np.ndarray, **card) -> np.ndarray:
    """The scores the Predictor labels for `rgb` (its own steps: pad, run, upsample, crop back)."""
    session = open_session(model, "cpu", overrides=card)
    x, placement = to_model_input(rgb, session.card)
    output = at_input_resolution(session.run(x[None])[0], session.card, placement.input_size)
    return from_model_output(output, placement)


def export_web(source: str, out: Path, ort_web: Path, *args: str) -> dict:
    done = segedge("export", source, "--target", "web", "-o", str(out), "--ort-web", str(ort_web), "--json", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_zoo_model_fp32_in_the_browser_matches_the_predictor(ort_web, images, tmp_path):
    out = tmp_path / "zoo_web"
    result = export_web(ZOO, out, ort_web, "--weights", "demo")
    assert result["target"]["target"] == "web" and result["target"]["precision"] == "fp32"
    manifest = json.loads((out / "segedge-web.json").read_text())
    assert manifest["onnxruntime_web"]["version"] == VERSION
    assert sorted(p.name for p in (out / "ort").iterdir()) == sorted(manifest["onnxruntime_web"]["files"])
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == ZOO and card["training"]  # demo weights, and the card says so

    posted, found = in_browser(out, images, tmp_path)
    assert posted["isolated"] is True and posted["threads"] == os.cpu_count()  # COOP/COEP: WASM threads on
    predictor = Predictor(out / "model.onnx")
    for rgb, (mask, scores) in zip(images, found):
        assert mask.shape == rgb.shape[:2]
        reference = predictor_scores(out / "model.onnx", rgb)
        parity = compare_outputs(reference[None], scores[None])
        assert judge(parity, preset("fp32")) == [], parity
        assert (mask == predictor.predict(rgb)).mean() >= preset("fp32").min_agreement
        assert len(np.unique(mask)) > 1  # trained weights: shapes found, not one class everywhere


@pytest.fixture(scope="module")
def many_images(tmp_path_factory, images) -> list[np.ndarray]:
    """`images` and a dozen more held-out ones at the demo data's size: enough pixels of every class to judge int8 by."""
    data = write_shapes_dataset(tmp_path_factory.mktemp("more"), ShapesConfig(train=0, val=12, size=SIZES[0], seed=1))
    return images + [np.asarray(Image.open(path).convert("RGB")) for path in sorted((data / "JPEGImages").glob("*.jpg"))]


def test_zoo_model_int8_in_the_browser_keeps_the_fp32_masks(ort_web, many_images, tmp_path):
    images = many_images
    fp32 = tmp_path / "fp32.onnx"
    done = segedge("export", ZOO, "--weights", "demo", "-o", str(fp32))
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "zoo_int8_web"
    result = export_web(ZOO, out, ort_web, "--weights", "demo", "--precision", "int8")
    assert result["target"]["precision"] == "int8"
    assert json.loads((out / "card.json").read_text())["precision"] == "int8"

    _, found = in_browser(out, images, tmp_path)
    # Judged over the images together, as `segedge verify` judges a folder: on one image a thin class
    # covers a few dozen pixels (a ring of 32 in one of the three `images`: 27 kept was "IoU 0.84").
    predictor = Predictor(fp32)
    pooled, fp32_masks = ParityAccumulator(), [predictor.predict(rgb) for rgb in images]
    for rgb, (mask, scores) in zip(images, found):
        pooled.add(predictor_scores(fp32, rgb)[None], scores[None])
    parity = pooled.result()
    assert judge(parity, preset("int8")) == [], parity
    agree = sum(int((mask == ref).sum()) for (mask, _), ref in zip(found, fp32_masks)) / sum(m.size for m in fp32_masks)
    assert agree >= preset("int8").min_agreement


class Foreign(torch.nn.Module):
    """A small encoder-decoder as another project writes it: stride 4, so sides must be multiples of 4."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.down = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, 2, 1),
                                        torch.nn.ReLU())
        self.head = torch.nn.Conv2d(16, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(self.head(self.down(x)), scale_factor=4.0, mode="bilinear")


def test_model_exported_elsewhere_in_the_browser_matches_the_predictor(ort_web, images, tmp_path):
    model = tmp_path / "foreign.onnx"
    torch.onnx.export(Foreign().eval(), (torch.zeros(1, 3, 64, 64),), str(model), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["out"],
                      dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "out": {0: "n", 2: "h", 3: "w"}})
    card = {"color_order": "BGR", "mean": (100.0, 110.0, 120.0), "std": (50.0, 60.0, 70.0), "scale": 1.0,
            "size_divisor": 4, "classes": ("sky", "sea", "boat")}
    out = tmp_path / "foreign_web"
    export_web(str(model), out, ort_web, "--color-order", "BGR", "--mean", "100,110,120", "--std", "50,60,70",
               "--scale", "1", "--size-divisor", "4", "--classes", "sky,sea,boat")
    written = json.loads((out / "card.json").read_text())
    assert (written["color_order"], written["size_divisor"], written["classes"]) == ("BGR", 4, ["sky", "sea", "boat"])

    _, found = in_browser(out, images, tmp_path)
    predictor = Predictor(model, **card)
    for rgb, (mask, scores) in zip(images, found):
        parity = compare_outputs(predictor_scores(model, rgb, **card)[None], scores[None])
        assert judge(parity, preset("fp32")) == [], parity
        assert (mask == predictor.predict(rgb)).mean() >= preset("fp32").min_agreement


def test_without_the_isolation_headers_the_page_runs_one_thread(ort_web, images, tmp_path):
    out = tmp_path / "tiny_web"
    export_web("tests/tiny_models.py:build", out, ort_web, "--input-size", "48x48")
    posted, found = in_browser(out, images[:1], tmp_path, isolated=False)
    assert posted["isolated"] is False and posted["threads"] == 1
    assert (found[0][0] == Predictor(out / "model.onnx").predict(images[0])).all()


def test_export_refuses_what_it_cannot_write(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    done = segedge("export", "tests/tiny_models.py:build", "--target", "web", "-o", str(taken), "--input-size", "48x48",
                   "--ort-web", str(tmp_path))
    assert done.returncode == 2 and "was not written by segedge" in done.stderr and "Traceback" not in done.stderr
    assert (taken / "notes.txt").read_text() == "mine" and len(list(taken.iterdir())) == 1

    no_npm = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = segedge("export", "tests/tiny_models.py:build", "--target", "web", "-o", str(tmp_path / "w"),
                   "--input-size", "48x48", env=no_npm)
    assert done.returncode == 2 and f"npm pack {PACKAGE}@{VERSION}" in done.stderr and "--ort-web" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "w").exists()

    done = segedge("export", "tests/tiny_models.py:build", "--target", "web", "-o", str(tmp_path / "w"),
                   "--input-size", "48x48", "--ort-web", str(tmp_path / "missing"))
    assert done.returncode == 2 and "--ort-web" in done.stderr and not (tmp_path / "w").exists()


def test_segedge_serve_isolates_the_demo_page_and_the_page_says_when_it_is_not(ort_web, tmp_path):
    out = tmp_path / "demo_web"
    export_web("tests/tiny_models.py:build", out, ort_web, "--input-size", "48x48")
    server = subprocess.Popen([sys.executable, "-m", "segedge", "serve", str(out), "--port", "0"],
                              stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline() if server.stderr else ""
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        page = dump_dom(url.group(0) + "index.html", tmp_path / "profile")
        threads = re.search(r"WASM with (\d+) thread", page)
        # every core Chromium counts (navigator.hardwareConcurrency), hence more than one where there are several
        assert threads, page[:2000]
        assert int(threads.group(1)) >= min(2, os.cpu_count() or 1) and '<p id="warning" hidden="">' in page
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 130
    plain = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(out)],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = plain.stdout.readline() if plain.stdout else ""
        port = re.search(r"port (\d+)", line)
        assert port, line
        page = dump_dom(f"http://127.0.0.1:{port.group(1)}/index.html", tmp_path / "profile2")
        assert "WASM with 1 thread" in page and "crossOriginIsolated is false: WASM threads are off" in page
    finally:
        plain.terminate()
        plain.wait(timeout=30)

    done = segedge("serve", str(tmp_path))
    assert done.returncode == 2 and "not a folder written by `segedge export --target web`" in done.stderr


def dump_dom(url: str, profile: Path, tries: int = 5) -> str:
    """The page's DOM once its scripts have run and the model has loaded.

    Virtual time settles the page's timers, but compiling onnxruntime-web's WASM takes real time, which a
    loaded machine can stretch past the budget: the page is opened again (same profile, so the compiled
    WASM is cached) until its status has left "loading".
    """
    chromium = find_chromium()
    assert chromium is not None
    page = ""
    for _ in range(tries):
        done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=30000",
                               "--dump-dom", url], capture_output=True, text=True, timeout=180, check=False)
        page = done.stdout
        if "loading onnxruntime-web and the model" not in page:
            break
    return page
