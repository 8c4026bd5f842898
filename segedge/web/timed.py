"""An ONNX file timed as a web page runs it: its web folder written, `session.run` timed in headless Chromium.

What `segedge bench --compare web` and `segedge report`'s web row share: the folder (the same one
`segedge export --target web` writes, with onnxruntime-web from npm or a local copy), the timing
(`segedge.web.browser`), and the words a row says about it (threads, isolation, when it was timed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from exporters.targets.ort_web import VERSION
from exporters.targets.web import write_web_folder
from runtimes.errors import UsageError
from runtimes.model.card import ModelCard
from segedge.web.browser import BrowserTiming, require_chromium, time_in_browser

RUNTIME = "onnxruntime-web"
# The browser is another process with its own clock: its runs cannot join the interleaved rounds.
OWN_BLOCK = "timed in the browser in its own block after the interleaved rounds"


def time_web_export(model: Path, card: ModelCard, x: np.ndarray, folder: Path, *, runs: int, warmup: int,
                    threads: int | None = None, ort_web: Path | None = None,
                    progress: Callable[[str], None] = lambda message: None) -> BrowserTiming:
    """Write `model`'s web folder at `folder` and time `session.run` on `x` in headless Chromium.

    Raises BrowserError without Chromium (before any work), the export's errors (no npm and no `ort_web`,
    a precision or an operator the web target refuses), and BrowserError when the page fails.
    """
    require_chromium()
    if model.suffix != ".onnx":
        raise UsageError(f"the web row runs an ONNX file in the browser, not {model.name}")
    write_web_folder(model, folder, card, ort_web=ort_web, progress=progress)
    progress(f"timing {RUNTIME} in headless Chromium: {warmup} warm-up + {runs} runs")
    return time_in_browser(folder, x, runs=runs, warmup=warmup, threads=threads)


def web_provider(timing: BrowserTiming) -> str:
    return f"wasm, {timing.threads} thread{'' if timing.threads == 1 else 's'}"


def web_notes(timing: BrowserTiming) -> list[str]:
    isolation = "true" if timing.isolated else "false: WASM threads are off"
    return [f"{RUNTIME} {VERSION} (WASM, SIMD) in headless Chromium, {timing.threads} WASM thread(s), "
            f"crossOriginIsolated {isolation}", OWN_BLOCK,
            f"Chromium's memory at the end {timing.browser_memory_mb:.0f} MB (PSS, all its processes)"]
