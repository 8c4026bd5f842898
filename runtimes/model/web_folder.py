"""A folder written by `segedge export --target web`: recognised by its manifest, segedge-web.json.

The manifest names the model file, its card file and the onnxruntime-web version and files shipped
(`exporters.targets.web` writes it); `segedge info` and `segedge serve` read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "segedge-web.json"


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of the web folder `folder`; None when it is not one."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("target") == "web" else None


def is_web_folder(folder: str | os.PathLike[str]) -> bool:
    return read_manifest(folder) is not None
