"""`segedge bench --compare web`: a web row timed in Debian's headless Chromium beside ONNX Runtime and
PyTorch eager, through the real CLI (a subprocess), with its threads, isolation and ratio to eager stated.

Needs chromium and npm; they skip where absent, except under CI, where a missing one fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from segedge.web.browser import INSTALL, find_chromium
from segedge.web.timed import OWN_BLOCK
from tests.web_browser import need


def segedge(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "segedge", *args], capture_output=True, text=True, timeout=900,
                          env=env, check=False)



@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    done = segedge("export", "tests/tiny_models.py:build", "-o", str(path), "--input-size", "48x48")
    assert done.returncode == 0, done.stderr[-3000:]
    return path


def test_bench_times_the_web_row_after_the_rounds_against_eager(tiny):
    need("chromium", find_chromium())
    need("npm", shutil.which("npm"))
    done = segedge("bench", str(tiny), "--compare", "torch,web", "--runs", "6", "--warmup", "1", "--threads", "2",
                   "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)["rows"]
    assert [r["runtime"].split()[0] for r in rows] == ["onnxruntime", "torch", "onnxruntime-web"]
    web = rows[-1]
    assert (web["status"], web["provider"], web["runs"], web["batch"]) == ("ok", "wasm, 2 threads", 6, 1)
    assert 0 < web["p50_ms"] <= web["p90_ms"] and web["first_run_ms"] > 0 and web["setup_s"] > 0
    notes = web["notes"]
    assert "2 WASM thread(s), crossOriginIsolated true" in notes[0] and OWN_BLOCK in notes
    eager = rows[1]["p50_ms"]
    ratio = next(n for n in notes if "x eager" in n)
    assert ratio.startswith(f"{eager / web['p50_ms']:.2f}x eager: PyTorch eager's p50 {eager:.1f} ms")

    table = segedge("bench", str(tiny), "--compare", "web", "--no-torch", "--runs", "3", "--warmup", "1",
                    env={**os.environ, "COLUMNS": "250"})  # the table's cells unwrapped
    assert table.returncode == 0, table.stderr[-3000:]
    assert "onnxruntime-web fp32" in table.stdout and "wasm, " in table.stdout
    assert "x eager" not in table.stderr  # no eager row, no ratio


def test_bench_without_chromium_says_what_to_install(tiny):
    no_browser = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = segedge("bench", str(tiny), "--compare", "web", "--no-torch", "--runs", "2", "--json", env=no_browser)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    web = json.loads(done.stdout)["rows"][-1]
    assert (web["status"], web["runtime"], web["reason"]) == ("failed", "onnxruntime-web", INSTALL)
    assert json.loads(done.stdout)["rows"][0]["status"] == "ok"  # the other rows go on
    assert f"1 of 2 rows failed: onnxruntime-web fp32: {INSTALL}" in done.stderr

    done = segedge("bench", str(tiny), "--compare", "webgpu")
    assert done.returncode == 2 and "unknown peer 'webgpu'" in done.stderr and "web" in done.stderr
