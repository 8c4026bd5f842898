"""Shared helpers of the hostile-input tests (fixtures `hostile_dir`, `hostile_model`: conftest.py).

Each refused request gets exactly one `segedge: error: ...` line on stderr, the documented exit
code (2 for a malformed command line, 1 for a file or runtime failure) and leaves no file
behind: neither the output, nor a temporary file beside it, nor a folder in $TMPDIR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


ROOT = Path(__file__).resolve().parents[1]
TINY = "tests/tiny_models.py:build"


def files_under(folder: Path) -> list[str]:
    """Every file and folder below `folder`, less what other libraries leave in $TMPDIR."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not _foreign(p.relative_to(folder)))


def _foreign(relative: Path) -> bool:
    # `import onnxruntime` (1.32) drops a `.ses` session file into $TMPDIR; torch.export
    # keeps its compile cache in $TMPDIR/torchinductor_<user>. Neither is segedge's.
    return relative.name == ".ses" or any(part.startswith("torchinductor_") for part in relative.parts)


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("segedge: error: "), err
    assert "Traceback" not in err
    return lines[0]


def assert_refused(cli, workdir: Path, args: list, code: int, message: str) -> str:
    """Run `args` with the `cli` fixture; one error line holding `message`, exit `code`, no new file anywhere."""
    before = files_under(workdir)
    got, _, err = cli(*args)
    line = one_error_line(err)
    assert got == code, line
    assert message.lower() in line.lower(), line
    assert files_under(workdir) == before
    return line



def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("segedge: error: ")]


def valid_png(path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), np.uint8)).save(path)
