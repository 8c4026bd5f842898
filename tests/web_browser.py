"""Run an exported web folder's page in headless Chromium and collect what the page POSTs back.

The folder is served by its own serve.py (127.0.0.1, COOP/COEP headers) with one extra route,
POST /__result, where tests/web_harness.html sends its masks, scores and timings. Chromium is
Debian's, with the flags of tests/test_html_report.py; it is stopped (by its process id) once the
result has arrived. Used by tests/test_web_target.py and benchmarks/bench_web.py.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import queue
import shutil
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

HARNESS = Path(__file__).with_name("web_harness.html")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--disable-default-apps", "--disable-quic", "--no-pings",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def find_chromium() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)


def _serve_module(folder: Path) -> Any:
    spec = importlib.util.spec_from_file_location("exported_serve", folder / "serve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def serving(folder: Path, isolated: bool = True) -> Iterator[tuple[str, "queue.Queue[dict]"]]:
    """Serve `folder` with its serve.py (without the isolation headers when `isolated` is False)."""
    serve = _serve_module(folder)  # the folder's own serve.py, as shipped
    results: queue.Queue[dict] = queue.Queue()

    class Handler(serve.IsolatedHandler):  # type: ignore[name-defined]
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            results.put(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def end_headers(self) -> None:
            if isolated:
                super().end_headers()
            else:
                serve.http.server.SimpleHTTPRequestHandler.end_headers(self)

    server = serve.make_server(folder, 0, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", results
    finally:
        server.shutdown()
        server.server_close()


def run_harness(folder: Path, query: str, profile: Path, *, isolated: bool = True, timeout: float = 240) -> dict:
    """Open the harness page of `folder` with `query` in headless Chromium; the JSON it posted."""
    chromium = find_chromium()
    assert chromium is not None, "chromium is not installed"
    shutil.copyfile(HARNESS, folder / "harness.html")
    with serving(folder, isolated) as (url, results):
        browser = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                    f"{url}harness.html?{query}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            posted = results.get(timeout=timeout)
        except queue.Empty:
            posted = {"error": "the page posted nothing"}
        finally:
            browser.terminate()
            try:
                _, stderr = browser.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                browser.kill()
                _, stderr = browser.communicate()
    if "error" in posted:
        raise AssertionError(f"the page failed: {posted['error']}\nchromium: {stderr[-2000:]}")
    return posted


def decode(result: dict) -> tuple[np.ndarray, np.ndarray]:
    """(H x W mask, C x H x W float32 scores) of one image the harness segmented."""
    h, w = result["height"], result["width"]
    mask = np.frombuffer(base64.b64decode(result["mask"]), dtype=np.uint8).reshape(h, w)
    scores = np.frombuffer(base64.b64decode(result["scores"]), dtype=np.float32)
    return mask, scores.reshape(-1, h, w)


def lscpu_flags() -> str:
    done = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"})
    return next((line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("Flags")), "")
