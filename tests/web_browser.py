"""The browser runner (segedge.web.browser) as tests/test_web_target.py uses it: a page run, and the masks
and scores of the images it segmented."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest

from segedge.web.browser import CHROMIUM_FLAGS, find_chromium, run_page

__all__ = ["CHROMIUM_FLAGS", "decode", "find_chromium", "run_harness"]


def run_harness(folder: Path, query: str, profile: Path, *, isolated: bool = True, timeout: float = 240) -> dict:
    """Open the harness page of `folder` with `query` in headless Chromium; the JSON it posted."""
    return run_page(folder, query, isolated=isolated, timeout=timeout, profile=profile)


def decode(result: dict) -> tuple[np.ndarray, np.ndarray]:
    """(H x W mask, C x H x W float32 scores) of one image the harness segmented."""
    h, w = result["height"], result["width"]
    mask = np.frombuffer(base64.b64decode(result["mask"]), dtype=np.uint8).reshape(h, w)
    scores = np.frombuffer(base64.b64decode(result["scores"]), dtype=np.float32)
    return mask, scores.reshape(-1, h, w)


def need(tool: str, found: str | None) -> str:
    """`found` (a tool's path); a skip where the tool is absent, except under CI, which installs it and fails."""
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed: .ci/run installs it")
        pytest.skip(f"{tool} is not installed")
    return found
