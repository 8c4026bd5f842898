"""Run an exported web folder in Debian's headless Chromium and collect what its page finds.

    folder (`segedge export --target web`) -> served on 127.0.0.1 by the folder's own serve.py handler
      (COOP/COEP: cross-origin isolated, so onnxruntime-web runs WASM on several threads), plus three
      routes of ours: GET /__harness.html (harness.html, beside this module), GET /__input (the tensor
      to run), POST /__result (what the page found, as JSON)
    -> chromium --headless opens the harness page, in its own process group and a fresh profile
    -> the page's JSON, once posted; chromium is stopped by its process id (and its group after it)

`time_in_browser` times `session.run` in the page (warm-up, then timed runs with performance.now) on
one N x 3 x H x W float32 tensor and returns the times, the WASM threads, whether the page was
cross-origin isolated and the output of the last run. Nothing is written into the folder.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from runtimes.errors import BrowserError
from runtimes.measure.timing import Runner, TimingStats, summarize

HARNESS = Path(__file__).with_name("harness.html")
INSTALL = "headless Chromium is not installed (the browser rows run in it): apt install chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--disable-default-apps", "--disable-quic", "--no-pings",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
STOP_WAIT_S = 10.0
# onnxruntime-web's output element types, as numpy reads their bytes.
DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32, "uint8": np.uint8,
          "int8": np.int8, "bool": np.bool_}


def find_chromium() -> str | None:
    """Debian's chromium (or a chromium-browser) on PATH; None when there is none."""
    return next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


def require_chromium() -> str:
    chromium = find_chromium()
    if chromium is None:
        raise BrowserError(INSTALL)
    return chromium


@dataclass(frozen=True)
class BrowserTiming:
    """`session.run` as the page timed it, and what it ran with."""

    run_ms: tuple[float, ...]
    first_run_ms: float
    setup_s: float  # the page's model fetch and session creation
    threads: int  # WASM threads onnxruntime-web was given
    isolated: bool  # crossOriginIsolated: threads are on only when true
    output: np.ndarray  # the model's first output for the tensor given, as the page returned it
    browser_memory_mb: float  # Chromium's processes' memory (PSS) just before it was stopped

    def stats(self, name: str, runtime: str, provider: str, tags: dict[str, str], notes: list[str]) -> TimingStats:
        """The timing as a bench row (p50/p90/mean as every other row has them)."""
        page = Runner(name=name, runtime=runtime, provider=provider, run=lambda _: None, setup_s=self.setup_s,
                      notes=notes, tags=tags)  # a description only: the page ran the model
        return summarize(page, [ms / 1000.0 for ms in self.run_ms], 1, self.first_run_ms / 1000.0,
                         self.browser_memory_mb)


def time_in_browser(folder: Path, x: np.ndarray, *, runs: int = 20, warmup: int = 3, threads: int | None = None,
                    isolated: bool = True, timeout: float = 300.0, profile: Path | None = None) -> BrowserTiming:
    """Time `session.run` of `folder`'s model on `x` (float32, N x 3 x H x W) in headless Chromium.

    Raises BrowserError when Chromium is missing, the page fails, or nothing comes back in `timeout` seconds.
    """
    tensor = np.ascontiguousarray(x, dtype="<f4")
    query = f"tensor={'x'.join(map(str, tensor.shape))}&runs={runs}&warmup={warmup}"
    if threads is not None:
        query += f"&threads={threads}"
    posted = run_page(folder, query, isolated=isolated, timeout=timeout, tensor=tensor, profile=profile)
    return BrowserTiming(run_ms=tuple(posted["run_ms"]), first_run_ms=posted["first_run_ms"],
                         setup_s=posted["setup_ms"] / 1000.0, threads=posted["threads"], isolated=posted["isolated"],
                         output=page_tensor(posted["output"]), browser_memory_mb=posted["browser_memory_mb"])


def page_tensor(posted: dict[str, Any]) -> np.ndarray:
    """A tensor the page posted ({type, dims, data: base64 bytes}) as a numpy array."""
    dtype = DTYPES.get(posted["type"])
    if dtype is None:
        raise BrowserError(f"the page returned a {posted['type']} tensor, which segedge does not read")
    return np.frombuffer(base64.b64decode(posted["data"]), dtype=np.dtype(dtype).newbyteorder("<")).reshape(posted["dims"])


def run_page(folder: Path, query: str, *, isolated: bool = True, timeout: float = 300.0,
             tensor: np.ndarray | None = None, profile: Path | None = None) -> dict[str, Any]:
    """Open the harness page of `folder` with `query` in headless Chromium; the JSON it posted.

    `isolated` False serves without the COOP/COEP headers (the page then runs one WASM thread);
    `tensor`: the bytes GET /__input returns; `profile`: Chromium's profile folder (default a temporary one).
    """
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="segedge-chromium-") as work:
        profile = profile or Path(work) / "profile"
        with serving(folder, isolated, b"" if tensor is None else tensor.tobytes()) as (url, results):
            # Chromium's own log (D-Bus, GPU and sandbox chatter) is no part of a result: discarded.
            browser = subprocess.Popen(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                 f"{url}__harness.html?{query}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                posted = _wait(browser, results, timeout)
                posted["browser_memory_mb"] = _tree_memory_mb(browser.pid)
            finally:
                stop(browser)
        if "error" in posted:  # the page's error message, without the stack's "at ..." lines
            lines = [line.strip() for line in str(posted["error"]).splitlines()]
            message = " ".join(line for line in lines if line and not line.startswith("at "))
            raise BrowserError(f"the page failed: {message[:300]}")
    return posted


def _wait(browser: subprocess.Popen, results: queue.Queue[dict[str, Any]], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return results.get(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            if browser.poll() is not None:
                raise BrowserError(f"chromium exited (code {browser.returncode}) before the page posted its result") \
                    from None
    raise BrowserError(f"the page posted nothing within {timeout:g} s (chromium stopped)")


def _tree_memory_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss  # shared pages counted once across the processes
        except psutil.Error:  # a helper that exited meanwhile
            pass
    return total / 2**20


def stop(browser: subprocess.Popen) -> None:
    """Stop chromium by its process id, then whatever of its process group (renderers, zygotes) is left."""
    if browser.poll() is None:
        browser.terminate()
        try:
            browser.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
    try:
        os.killpg(browser.pid, signal.SIGKILL)  # its own group (start_new_session): only chromium's processes
    except (ProcessLookupError, PermissionError):
        pass


def _serve_module(folder: Path) -> Any:
    """The folder's own serve.py (as shipped): its handler sets the isolation headers."""
    spec = importlib.util.spec_from_file_location(f"segedge_web_serve_{abs(hash(folder))}", folder / "serve.py")
    if not (folder / "serve.py").is_file() or spec is None or spec.loader is None:
        raise BrowserError(f"{folder} has no serve.py: not a folder written by `segedge export --target web`")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def serving(folder: Path, isolated: bool = True, tensor: bytes = b"",
            ) -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """Serve `folder` on 127.0.0.1 with its serve.py (without the isolation headers when `isolated` is False);
    the base URL and the queue the page's POSTs arrive in."""
    serve = _serve_module(folder)
    results: queue.Queue[dict[str, Any]] = queue.Queue()
    routes = {"/__harness.html": (HARNESS.read_bytes(), "text/html"), "/__input": (tensor, "application/octet-stream")}

    class Handler(serve.IsolatedHandler):  # type: ignore[name-defined]
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                super().do_GET()
                return
            body, kind = route
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
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
