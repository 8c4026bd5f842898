"""Run Python subprocesses in which `import torch` fails, as on an app's runtime-only install."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SITECUSTOMIZE = '''
import sys


class BlockTorch:
    """A meta-path finder that refuses torch and everything below it."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"torch is blocked in this test ({name})")
        return None


sys.meta_path.insert(0, BlockTorch())
'''


def torch_free_env(folder: Path) -> dict[str, str]:
    """Environment for a subprocess: the repository importable, torch not (sitecustomize in `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)]), "PYTHONNOUSERSITE": "1"}
