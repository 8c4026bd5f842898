"""The browser runner (segedge.web.browser) and the report's web row (segedge.report.web_row), run for real:
a small model exported by segedge, its web folder written with onnxruntime-web from npm, timed in Debian's
headless Chromium, the page's output compared with ONNX Runtime CPU's on the same file.

Needs chromium and npm; they skip where absent, except under CI, where a missing one fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

from runtimes.backends.onnxruntime_session import open_session
from runtimes.errors import BrowserError
from segedge.report.rows import ReportRow
from segedge.report.web_row import web_row
from segedge.web.browser import INSTALL, find_chromium, time_in_browser
from segedge.web.timed import OWN_BLOCK
from tests.web_browser import need

SIZE = (40, 56)  # not the export's 48x48: the folder's model takes any multiple of its divisor



@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A small model exported by segedge (fp32 ONNX with its card)."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    done = subprocess.run([sys.executable, "-m", "segedge", "export", "tests/tiny_models.py:build", "-o", str(path),
                           "--input-size", "48x48"], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1, 3, *SIZE)).astype(np.float32)


def chromium_processes(profile: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(profile) in part for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


def test_web_row_times_the_page_and_returns_its_output(tiny, x, tmp_path):
    need("chromium", find_chromium())
    need("npm", shutil.which("npm"))
    messages: list[str] = []
    row, output = web_row(tiny, open_session(tiny, "cpu").card, x, tmp_path, 7, 2, messages.append)
    assert isinstance(row, ReportRow) and row.status == "ok", row.reason
    threads = os.cpu_count()
    assert (row.precision, row.runtime, row.provider) == ("fp32", "onnxruntime-web", f"wasm, {threads} threads")
    assert row.file == str(tmp_path / "web") and (tmp_path / "web" / "model.onnx").is_file()
    assert (tmp_path / "web" / "ort" / "ort-wasm-simd-threaded.wasm").is_file()  # fetched from npm
    assert row.p50_ms is not None and row.p90_ms is not None and row.mean_ms is not None
    assert 0 < row.p50_ms <= row.p90_ms and row.mean_ms > 0 and row.size_mb is not None and row.size_mb > 0
    assert f"{threads} WASM thread(s), crossOriginIsolated true" in row.notes[0] and OWN_BLOCK in row.notes
    assert any("timing onnxruntime-web in headless Chromium: 2 warm-up + 7 runs" in m for m in messages)

    reference = open_session(tiny, "cpu").run(x)
    assert output is not None and output.dtype == np.float32 and output.shape == reference.shape
    assert float(np.abs(output - reference).max()) < 1e-4
    assert (output.argmax(1) == reference.argmax(1)).mean() == 1.0

    again, _ = web_row(tiny, open_session(tiny, "cpu").card, x, tmp_path, 3, 1, messages.append)
    assert again.status == "ok"  # its own earlier folder is replaced, not refused


def test_web_row_fails_as_a_row_without_chromium_or_npm(tiny, x, tmp_path, monkeypatch):
    card = open_session(tiny, "cpu").card
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    row, output = web_row(tiny, card, x, tmp_path / "a", 5, 1, lambda message: None)
    assert (row.status, row.reason, output) == ("failed", INSTALL, None)
    assert row.provider == "wasm" and row.p50_ms is None and not (tmp_path / "a").exists()

    chromium = need("chromium", shutil.which("chromium", path=os.defpath + ":/usr/bin"))
    only_chromium = tmp_path / "bin"
    only_chromium.mkdir()
    (only_chromium / "chromium").symlink_to(chromium)
    monkeypatch.setenv("PATH", str(only_chromium))
    row, output = web_row(tiny, card, x, tmp_path / "b", 5, 1, lambda message: None)
    assert row.status == "failed" and "npm is not on PATH" in row.reason and "--ort-web" in row.reason
    assert output is None and not (tmp_path / "b" / "web").exists()

    someone_elses = tmp_path / "c" / "web"
    someone_elses.mkdir(parents=True)
    (someone_elses / "notes.txt").write_text("mine")
    row, _ = web_row(tiny, card, x, tmp_path / "c", 5, 1, lambda message: None)
    assert row.status == "failed" and "was not written by segedge" in row.reason
    assert [p.name for p in someone_elses.iterdir()] == ["notes.txt"]


@pytest.fixture(scope="module")
def folder(tiny, tmp_path_factory) -> Path:
    """The tiny model's web folder (onnxruntime-web from npm)."""
    need("chromium", find_chromium())
    need("npm", shutil.which("npm"))
    out = tmp_path_factory.mktemp("runner") / "web"
    done = subprocess.run([sys.executable, "-m", "segedge", "export", str(tiny), "--target", "web", "-o", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_runner_without_isolation_runs_one_thread_and_leaves_no_process(folder, x, tmp_path):
    before = sorted(p.name for p in folder.rglob("*"))
    timing = time_in_browser(folder, x, runs=3, warmup=1, isolated=False, profile=tmp_path / "profile")
    assert (timing.isolated, timing.threads, len(timing.run_ms)) == (False, 1, 3)
    assert (timing.output.argmax(1) == open_session(folder / "model.onnx", "cpu").run(x).argmax(1)).all()
    assert chromium_processes(tmp_path / "profile") == []
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing written into the folder

    timing = time_in_browser(folder, x, runs=2, warmup=0, threads=1, profile=tmp_path / "profile2")
    assert (timing.isolated, timing.threads) == (True, 1)


def test_runner_stops_chromium_at_its_timeout(folder, x, tmp_path):
    with pytest.raises(BrowserError, match=r"the page posted nothing within 0\.2 s"):
        time_in_browser(folder, x, runs=3, warmup=1, timeout=0.2, profile=tmp_path / "profile")
    assert chromium_processes(tmp_path / "profile") == []
    with pytest.raises(BrowserError, match="not a folder written by `segedge export --target web`"):
        time_in_browser(tmp_path, x, runs=3, warmup=1)
    with pytest.raises(BrowserError, match="the page failed: .*Got: 2 Expected: 3"):
        time_in_browser(folder, x[:, :2], runs=1, warmup=0)  # two channels: the model refuses the tensor


def test_report_takes_the_web_row_beside_the_others(tmp_path):
    """`segedge report --runtimes onnxruntime,torch,web`: the browser's row in the table, its agreement with
    PyTorch fp32 on the generated input, no mIoU (the page runs that input only), and the web target's best row."""
    from runtimes.backends import RuntimeSpec
    from segedge.data import ShapesConfig, write_shapes_dataset
    from segedge.report import ReportRequest, run_report

    need("chromium", find_chromium())
    need("npm", shutil.which("npm"))
    labelled = write_shapes_dataset(tmp_path / "shapes", ShapesConfig(train=0, val=3, size=(48, 48)))
    report = run_report(ReportRequest(target="tests/tiny_models.py:build", output=tmp_path / "out", precisions=("fp32",),
                                      runtimes=("onnxruntime", "torch", "web"), input_size=(48, 48),
                                      spec=RuntimeSpec(threads=1), warmup=1, runs=3, data=labelled))
    rows = {r.runtime: r for r in report.rows}
    web = rows["onnxruntime-web"]
    assert web.status == "ok", web.reason
    assert web.target == "web" and web.provider == "wasm, 1 thread" and web.p50_ms > 0
    assert web.agreement >= 0.999 and web.parity_ok and web.miou is None and rows["onnxruntime"].miou is not None
    assert (tmp_path / "out" / "web" / "model.onnx").is_file() and web.file == str(tmp_path / "out" / "web")
    assert any(OWN_BLOCK in note for note in web.notes)
    # A user's model is judged (its weights may be trained): ONNX Runtime by mIoU, the page by its agreement.
    assert report.per_target == {"cpu": "fp32 / cpu / onnxruntime", "web": web.label}
