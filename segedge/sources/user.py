"""Importing the user's own model builder: `package.module:function` or `path/to/file.py:function`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtimes.errors import UsageError


def load_user_function(source: str) -> Callable[..., Any]:
    """Import `pkg.mod:fn` or `path/file.py:fn` and return the function."""
    target, _, attr = source.rpartition(":")
    if not target or not attr:
        raise UsageError(f"model source {source!r} must look like package.module:function or file.py:function")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"model file not found: {path}")
        name = f"segedge_user_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {path}: not a Python source file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise UsageError(f"cannot import {path}: {type(exc).__name__}: {exc}") from None
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise UsageError(f"cannot import module {target!r}: {exc}") from None
        except Exception as exc:  # a name importlib refuses ("../x") or the module's own code failing
            raise UsageError(f"cannot import module {target!r}: {type(exc).__name__}: {exc}") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise UsageError(f"{target} has no function {attr!r}")
    return function
