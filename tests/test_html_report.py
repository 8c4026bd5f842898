"""The HTML pages of `segedge report` (index.html) and `segedge eval --html`: what they show, counted and
checked against an independent run, well-formed, self-contained, and rendered in headless Chromium.

The browser tests need Debian's `chromium` (`.ci/run` installs it); they skip where it is absent,
except under CI, where a missing browser fails. Screenshots go to $SEGEDGE_TEST_ARTEFACTS when set,
else to the test's temporary folder; the path is printed.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from runtimes.backends import RuntimeSpec
from runtimes.model.card import CARD_KEY, ModelCard
from runtimes.measure.parity import ParityAccumulator
from segedge.data import ShapesConfig, write_shapes_dataset
from segedge.data.labelled import labelled_pairs
from segedge.report import ReportRequest, run_report
from segedge.report.accuracy import image_input
from segedge.report.render import write_report
from segedge.report.samples import AGREE, SampleBook
from tests.tiny_models import build

TINY = "tests/tiny_models.py:build"
SIZE = (48, 48)
SAMPLES = 3  # 1 fixed + the 2 most wrong
POOL = 6


# -- a strict HTML check: every element closed, in order; unique ids; nothing fetched from outside --------
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class StrictPage(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.images: list[dict[str, str]] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attributes(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attributes(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag of void element <{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}> at {self.getpos()}")
        else:
            self.stack.pop()

    def _attributes(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.errors.append(f"<{tag}> repeats an attribute: {names}")
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            if values["id"] in self.ids:
                self.errors.append(f"id {values['id']!r} twice")
            self.ids.add(values["id"])
        for name in ("src", "href"):
            if name in values and not values[name].startswith("data:"):
                self.errors.append(f"<{tag} {name}={values[name][:60]!r}> would load something from outside the page")
        if tag == "link" or (tag == "script" and "src" in values):
            self.errors.append(f"<{tag}> loads an external resource")
        if tag == "img":
            self.images.append(values)


def check_page(text: str) -> StrictPage:
    page = StrictPage()
    page.feed(text)
    page.close()
    assert page.doctype and not page.errors and not page.stack, (page.errors, page.stack)
    return page


def png_pixels(data_uri: str) -> np.ndarray:
    """The palette indices (or pixels) of an inline PNG/JPEG."""
    head, _, payload = data_uri.partition(",")
    assert head.startswith("data:image/") and head.endswith(";base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))


def sections(text: str) -> dict[str, str]:
    """Each row's samples section: its label -> its HTML."""
    found = re.findall(r'<section class="sampled" data-label="([^"]*)"(.*?)</section>', text, flags=re.DOTALL)
    return {label.replace("&amp;", "&"): body for label, body in found}


def figures(section: str) -> list[tuple[dict[str, int], list[str], list[str]]]:
    """(data-* numbers, image captions, image data URIs) of each sample figure."""
    out = []
    for attrs, body in re.findall(r"<figure ([^>]*)>(.*?)</figure>", section, flags=re.DOTALL):
        numbers = {k: int(v) for k, v in re.findall(r'data-(\w+)="(\d+)"', attrs)}
        pics = re.findall(r'<div class="pic"><img class="sample" src="([^"]+)" alt="([^":]+):', body)
        out.append((numbers, [caption for _, caption in pics], [uri for uri, _ in pics]))
    return out


# -- the report page -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("html_report")
    data = write_shapes_dataset(root / "shapes", ShapesConfig(train=0, val=POOL, size=SIZE))
    book = SampleBook(SAMPLES)
    request = ReportRequest(target=TINY, output=root / "out", runtimes=("onnxruntime", "torch"), input_size=SIZE,
                            spec=RuntimeSpec(threads=1), warmup=0, runs=2, calib_count=4, data=data)
    report = run_report(request, samples=book)
    written = write_report(report, request.output, book)
    return report, book, written, (request.output / "index.html").read_text(encoding="utf-8"), data


def _labels_of(output: np.ndarray) -> np.ndarray:
    return np.argmax(output[0], axis=0)


def _independent_maps(report, data: Path, precision: str) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple]]:
    """PyTorch fp32's and an ONNX file's label maps (and logits) of every pool image, run here without segedge's runners."""
    onnx_file = next(r.file for r in report.rows if r.precision == precision and r.runtime == "onnxruntime")
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    model = build().eval()
    card = ModelCard.from_json(next(p.value for p in onnx.load(onnx_file).metadata_props if p.key == CARD_KEY))
    references, rows, logits = [], [], []
    for image, _ in labelled_pairs(data):
        x = image_input(image, card, SIZE)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        out = session.run(None, {session.get_inputs()[0].name: x})[0]
        references.append(_labels_of(ref))
        rows.append(_labels_of(out))
        logits.append((ref, out))
    return references, rows, logits


def test_report_page_is_well_formed_and_self_contained(report_run):
    report, _, written, text, _ = report_run
    assert written["html"] == Path(written["json"]).parent / "index.html"
    page = check_page(text)
    assert {"rows", "verdict", "machine"} <= page.ids
    assert all(img["src"].startswith("data:image/") for img in page.images)
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    table = re.search(r'<table class="sortable" id="rows">.*?</table>', text, flags=re.DOTALL).group(0)
    assert table.count("<tr") == 1 + len(report.rows)  # the header and each row
    assert sum(1 for img in page.images if img.get("class") == "plot") == (1 if isinstance(written["plot"], Path) else 0)
    assert f"Ship {report.best}" in text


def test_rows_that_change_the_masks_show_their_samples(report_run):
    report, book, _, text, _ = report_run
    assert book.reference == "fp32 / cpu / torch" and book.labelled and len(book.pool) == POOL
    shown = sections(text)
    ok = [r.label for r in report.rows if r.status == "ok"]
    others = [label for label in ok if label != book.reference and book.rows[label].wrong > 0]
    same = [label for label in ok if label != book.reference and book.rows[label].wrong == 0]
    assert list(shown) == sorted(others, key=lambda label: -book.rows[label].wrong)  # the most changed first
    assert "int8 / cpu / onnxruntime" in others and "fp32 / cpu / onnxruntime" in same
    assert re.search(r'<p id="same-masks">[^<]*' + re.escape(", ".join(same)) + r"\.</p>", text)
    # input, ground truth, reference, the row, where it differs: 5 pictures per sample, SAMPLES per row
    per_figure = ["input", "ground truth", "reference", "this row", "differs"]
    for label in others:
        found = figures(shown[label])
        assert len(found) == SAMPLES and all(captions == per_figure for _, captions, _ in found)
    assert len(re.findall(r'<img class="sample"', text)) == len(others) * SAMPLES * len(per_figure)
    # only the pictures some row shows are kept
    kept = {s.index for label in others + same for s in book.rows[label].samples}
    assert set(book.inputs) == set(book.truths) == set(book.references) == kept


def test_disagreement_counts_and_maps_match_an_independent_run(report_run):
    report, _, _, text, data = report_run
    references, rows, logits = _independent_maps(report, data, "int8")
    wrong = [int((r != m).sum()) for r, m in zip(references, rows)]
    section = sections(text)["int8 / cpu / onnxruntime"]
    total = re.search(r'data-wrong="(\d+)" data-pixels="(\d+)"', section).groups()
    assert (int(total[0]), int(total[1])) == (sum(wrong), POOL * SIZE[0] * SIZE[1])
    # ... which is what the parity accumulator, the figure verify and the report judge by, makes of the same outputs
    accumulator = ParityAccumulator(4)
    for ref, out in logits:
        accumulator.add(ref, out)
    assert accumulator.result().argmax_agreement == pytest.approx(1 - sum(wrong) / int(total[1]), abs=1e-12)
    assert sum(wrong) > 0  # int8 changes some pixels: the map has something to show
    found = figures(section)
    assert found[0][0]["index"] == 0  # the fixed image, then the most wrong of the others, most wrong first
    worst = sorted(range(1, POOL), key=lambda i: (-wrong[i], i))[: SAMPLES - 1]
    assert [numbers["index"] for numbers, _, _ in found[1:]] == worst
    for numbers, captions, uris in found:
        i = numbers["index"]
        assert numbers["wrong"] == wrong[i] and numbers["pixels"] == SIZE[0] * SIZE[1]
        pictures = dict(zip(captions, uris))
        # 48 x 48 is under the thumbnail bound: the pictures are the maps themselves, pixel for pixel
        assert np.array_equal(png_pixels(pictures["this row"]), rows[i])
        assert np.array_equal(png_pixels(pictures["reference"]), references[i])
        diff = png_pixels(pictures["differs"])
        assert int((diff != AGREE).sum()) == wrong[i]
        assert np.array_equal(diff[diff != AGREE], rows[i][diff != AGREE])  # coloured by the class the row chose


def test_class_iou_against_labels_is_the_miou_column(report_run):
    report, book, _, text, _ = report_run
    for row in report.rows:
        kept = book.rows[row.label]
        assert float(np.nanmean(kept.vs_labels.iou())) == pytest.approx(row.miou, abs=1e-12)
    changes = book.class_changes("int8 / cpu / onnxruntime")
    assert changes and [iou for _, iou, _ in changes] == sorted(iou for _, iou, _ in changes)  # worst class first
    assert all(delta is not None for _, _, delta in changes) and "&Delta;IoU vs labels" in text


def test_page_size_is_bounded(report_run):
    _, _, written, text, _ = report_run
    # a 48 x 48 model: pictures of under 10 kB each, rows x samples x 5 of them, plus the plot
    assert len(text.encode()) < 600_000
    assert Path(written["html"]).stat().st_size == len(text.encode())


# -- the sample book on its own: selection, thumbnails, memory -------------------------------------
def _pool(tmp_path: Path, n: int, size: tuple[int, int]) -> list[tuple[Path, None]]:
    out = []
    for i in range(n):
        path = tmp_path / f"im{i}.png"
        Image.fromarray(np.full((*size, 3), 20 * i, np.uint8)).save(path)
        out.append((path, None))
    return out


def test_book_keeps_the_fixed_few_and_the_most_wrong(tmp_path):
    book = SampleBook(limit=3)  # one fixed, two worst
    book.start(_pool(tmp_path, 6, (8, 8)), ("a", "b"), ((0, 0, 0), (255, 0, 0)), "test images", reference="ref")
    wrong = [5, 0, 9, 2, 9, 1]
    for i in range(6):
        book.add("ref", i, np.zeros((8, 8), np.uint8))
    for i, n in enumerate(wrong):
        labels = np.zeros(64, np.uint8)
        labels[:n] = 1
        book.add("row", i, labels.reshape(8, 8))
    row = book.rows["row"]
    assert [(s.index, s.wrong) for s in row.samples] == [(0, 5), (2, 9), (4, 9)]
    assert row.wrong == sum(wrong) and row.pixels == 6 * 64
    assert set(book.inputs) == set(book.references) == {0, 2, 4} and not book.truths
    assert book.rows["ref"].samples == []  # the reference's own strip would show nothing


def test_book_wants_the_reference_first(tmp_path):
    book = SampleBook(limit=2)
    book.start(_pool(tmp_path, 2, (4, 4)), ("a", "b"), ((0, 0, 0), (255, 0, 0)), "test images", reference="ref")
    with pytest.raises(RuntimeError, match="must be added before"):
        book.add("row", 0, np.zeros((4, 4), np.uint8))


def test_thumbnails_are_bounded_and_keep_thin_differences(tmp_path):
    book = SampleBook(limit=1, thumb_side=16)
    book.start(_pool(tmp_path, 1, (40, 64)), ("a", "b", "c"), ((0, 0, 0), (255, 0, 0), (0, 255, 0)), "t", "ref")
    book.add("ref", 0, np.zeros((40, 64), np.uint8))
    labels = np.zeros((40, 64), np.uint8)
    labels[17, 33] = 2  # one pixel: a 4 x 4 block of the thumbnail's source
    book.add("row", 0, labels)
    sample = book.rows["row"].samples[0]
    diff = np.asarray(Image.open(io.BytesIO(sample.diff)))
    assert sample.size == (10, 16) and diff.shape == (10, 16) and np.asarray(Image.open(io.BytesIO(book.inputs[0]))).shape == (10, 16, 3)
    assert sample.wrong == 1 and int((diff != AGREE).sum()) == 1  # still visible after shrinking 4x


def test_no_samples_means_no_extra_runs(tmp_path, cli):
    code, _, err = cli("report", TINY, "--input-size", "32x32", "-o", tmp_path, "--precisions", "fp32",
                       "--runtimes", "onnxruntime,torch", "--runs", "1", "--warmup", "0", "--threads", "1", "--samples", "0")
    text = (tmp_path / "index.html").read_text()
    assert code == 0 and f"html: {tmp_path / 'index.html'}" in err
    check_page(text)
    assert "Where the masks change" not in text and "<img class=\"sample\"" not in text


# -- the eval page -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def eval_run(tmp_path_factory, tiny_export):
    from segedge.cli import main

    root = tmp_path_factory.mktemp("html_eval")
    data = write_shapes_dataset(root / "shapes", ShapesConfig(train=0, val=5, size=(40, 56)))
    fp32 = tiny_export("48x48")
    fp16 = root / "tiny_fp16.onnx"
    assert main(["quantize", str(fp32), "--precision", "fp16", "-o", str(fp16)]) == 0
    return root, data, fp32, fp16


def test_eval_page(eval_run, cli):
    root, data, fp32, fp16 = eval_run
    code, stdout, err = cli("eval", fp32, fp16, "--data", data, "--html", root / "page", "--samples", "2", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    text = (root / "page" / "index.html").read_text()
    check_page(text)
    shown = sections(text)
    assert len(shown) == 2
    for model, (label, section) in zip(result["models"], shown.items()):
        found = figures(section)
        assert len(found) == 2 and all(c == ["input", "ground truth", "model", "differs"] for _, c, _ in found)
        # the heat map's cells are the confusion matrix: its IoU per class is the table's
        cells = re.findall(r'data-truth="(\d+)" data-predicted="(\d+)" data-count="(\d+)"', section)
        n = len(result["classes"])  # the model's classes: ground-truth classes past them are not scored
        matrix = np.zeros((n, n), np.int64)
        for t, p, c in cells:
            matrix[int(t), int(p)] = int(c)
        labelled = sum(int((np.asarray(Image.open(m)) < n).sum()) for _, m in labelled_pairs(data))
        assert matrix.sum() == labelled == int(re.search(r'data-pixels="(\d+)"', section).group(1))
        tp = np.diag(matrix)
        union = matrix.sum(0) + matrix.sum(1) - tp
        for c in range(n):
            expected = model["per_class_iou"][c]
            assert (expected is None and union[c] == 0) or tp[c] / union[c] == pytest.approx(expected, abs=1e-12)
        for numbers, _, uris in found:  # wrong pixels are the ground truth's labelled pixels the model misses
            mask = np.asarray(Image.open(labelled_pairs(data)[numbers["index"]][1]))
            diff = png_pixels(uris[3])
            assert int((diff != AGREE).sum()) == numbers["wrong"] and numbers["pixels"] == int((mask < n).sum())
    assert len(re.findall(r'<img class="sample"', text)) == 2 * 2 * 4
    assert re.search(r'<table class="bars" id="iou-bars">', text) and "html: " in err


# -- in a real browser ---------------------------------------------------------------------------
# Flags: headless, no sandbox (CI runs as root), and nothing that reaches the network: no
# background updates, sync, component downloads or QUIC, and every host name unresolvable.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--disable-default-apps", "--disable-quic", "--no-pings",
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars"]

# Runs before the page's own script: records every error (uncaught exceptions, failed loads, console.error),
# then, once loaded, whether each image is decoded and laid out, and the first column after sorting by one.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  __errors.push(e.message || ("failed to load " + ((e.target && (e.target.src || e.target.tagName)) || "?").slice(0, 60)));
}, true);
var __consoleError = console.error;
console.error = function () { __errors.push(Array.prototype.join.call(arguments, " ")); __consoleError.apply(console, arguments); };
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) {
    var box = i.getBoundingClientRect();
    return !(i.complete && i.naturalWidth > 0 && box.width > 0 && box.height > 0);
  }).map(function (i) { return i.alt; });
  var table = document.querySelector("table.sortable");
  var column = Number(document.body.dataset.sortColumn || 0);
  var header = table.tHead.rows[0].cells[column];
  header.click();
  var up = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[column].dataset.sort; });
  header.click();
  var down = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[column].dataset.sort; });
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images: images.length, broken: broken, errors: __errors,
                                    table: table.getBoundingClientRect().height, up: up, down: down});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    found = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def artefacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SEGEDGE_TEST_ARTEFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def in_browser(page: Path, tmp_path: Path, sort_column: int) -> dict:
    """Load `page` (with the probe) in headless Chromium and return what the probe saw."""
    text = page.read_text(encoding="utf-8")
    probed = page.with_name("probed.html")
    probed.write_text(text.replace("<head>", "<head>\n" + PROBE, 1).replace("<body>", f'<body data-sort-column="{sort_column}">', 1),
                      encoding="utf-8")
    done = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)  # the probe's absence says why
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, flags=re.DOTALL)
    assert found, f"the probe did not run: {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def screenshot(page: Path, target: Path, tmp_path: Path, height: int = 2000) -> Path:
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size=1400,{height}",
                    f"--screenshot={target}", page.as_uri()], capture_output=True, text=True, timeout=180, check=True)
    return target


def _check_screenshot(path: Path, capsys) -> None:
    shot = np.asarray(Image.open(path).convert("RGB"))
    assert shot.shape[1] == 1400 and shot.std() > 10  # a page, not a blank window
    with capsys.disabled():
        print(f"\nscreenshot: {path}")


def test_report_page_in_a_browser(report_run, tmp_path, capsys):
    report, _, written, text, _ = report_run
    p50 = 8  # the table's p50 column
    seen = in_browser(Path(written["html"]), tmp_path, p50)
    samples = len(re.findall(r'<img class="sample"', text))
    assert seen["errors"] == [] and seen["broken"] == [] and seen["table"] > 0
    assert seen["images"] == samples + 1 and samples > 0  # every sample picture and the plot, decoded and laid out
    values = [float(v) for v in seen["up"]]
    assert values == sorted(values) and [float(v) for v in seen["down"]] == sorted(values, reverse=True)
    assert sorted(values) == sorted(r.p50_ms for r in report.rows)
    _check_screenshot(screenshot(Path(written["html"]), artefacts(tmp_path) / "report_page.png", tmp_path), capsys)


def test_eval_page_in_a_browser(eval_run, tmp_path, cli, capsys):
    _, data, fp32, fp16 = eval_run
    page = tmp_path / "page"
    code, _, err = cli("eval", fp32, fp16, "--data", data, "--html", page, "--samples", "2")
    assert code == 0, err
    seen = in_browser(page / "index.html", tmp_path, 1)  # by mIoU
    assert seen["errors"] == [] and seen["broken"] == [] and seen["images"] == 2 * 2 * 4
    assert [float(v) for v in seen["up"]] == sorted(float(v) for v in seen["up"])
    _check_screenshot(screenshot(page / "index.html", artefacts(tmp_path) / "eval_page.png", tmp_path, 1200), capsys)
