"""The backend registry: which runtime opens a model, chosen by name or by the file's suffix.

    from . import backend_for_path, backend_named, open_runner, register_backend

A backend is one module (`runtimes.backends.onnxruntime`, `runtimes.backends.openvino`) defining a
`Backend` subclass. The built-in ones are listed below by module name and imported on first use,
so `from runtimes import Predictor` loads no runtime it does not run; a backend written elsewhere
(an app's, a test's) is registered with `register_backend(MyBackend())`.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..model.card import ModelCard
from ..errors import ModelFileError, UsageError
from .base import Backend, LabelsInGraph, ModelRunner, Runtime, RuntimeSpec, as_runtime, check_hint, runtime_name

__all__ = ["as_runtime", "Backend", "LabelsInGraph", "ModelRunner", "Runtime", "RuntimeMismatchWarning", "RuntimeSpec",
           "backend_for_path", "backend_named", "backend_names", "check_hint", "chosen_backend", "open_runner", "register_backend",
           "runtime_name", "unregister_backend"]

# name -> the module whose `BACKEND` it is; imported when first asked for (a new built-in runtime: one line here).
_BUILT_IN = {"onnxruntime": "runtimes.backends.onnxruntime", "openvino": "runtimes.backends.openvino",
             "litert": "runtimes.backends.litert", "executorch": "runtimes.backends.executorch"}
# What a file whose suffix no backend owns opens with (it then says what is wrong with the file).
DEFAULT_RUNTIME = "onnxruntime"
_registered: dict[str, Backend] = {}


class RuntimeMismatchWarning(UserWarning):
    """A file made for one runtime (its card's `runtime`) opened on another."""


def register_backend(backend: Backend) -> Backend:
    """Make `backend` available by its name and its suffixes; a name or a suffix already taken is refused."""
    if not backend.name:
        raise UsageError(f"{type(backend).__name__} has no name")
    if backend.name in backend_names():
        raise UsageError(f"a runtime named {backend.name!r} is already registered")
    _load_built_ins()
    for other in _registered.values():
        taken = set(other.suffixes) & set(backend.suffixes)
        if taken:
            raise UsageError(f"{', '.join(sorted(taken))} files already open with {other.name}")
    _registered[backend.name] = backend
    return backend


def unregister_backend(name: str) -> None:
    """Remove a registered backend (a test's); the built-in ones stay."""
    if name in _BUILT_IN:
        raise UsageError(f"{name} is a built-in runtime")
    _registered.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """Every runtime's name: the built-in ones first, then those registered later."""
    return (*_BUILT_IN, *(name for name in _registered if name not in _BUILT_IN))


def backend_named(name: Runtime | str) -> Backend:
    """The backend of runtime `name`; an unknown name is a `UsageError` listing the known ones."""
    key = runtime_name(name)
    if key not in _registered and key in _BUILT_IN:
        _import(key)
    try:
        return _registered[key]
    except KeyError:
        raise UsageError(f"unknown runtime {key!r}; choose from {', '.join(backend_names())}") from None


def backend_for_path(path: str | os.PathLike[str]) -> Backend:
    """The runtime that opens `path` as it is, by its suffix (OpenVINO for an IR .xml; ONNX Runtime for an
    .onnx file and for any suffix no backend owns)."""
    suffix = Path(path).suffix.lower()
    for name in backend_names():  # built-in ones imported one by one, until one owns the suffix
        backend = backend_named(name)
        if suffix in backend.suffixes:
            return backend
    return backend_named(DEFAULT_RUNTIME)


def chosen_backend(path: str | os.PathLike[str], runtime: Runtime | str | None) -> Backend:
    """`runtime`'s backend, or (None) the file's own; a file only another runtime reads is a `ModelFileError`."""
    if runtime is None:
        return backend_for_path(path)
    backend = backend_named(runtime)
    owner = backend_for_path(path)
    if owner is not backend and not backend.reads(path) and Path(path).suffix.lower() in owner.suffixes:
        install = f"; {owner.install}" if owner.install else ""
        raise ModelFileError(f"{path} is {owner.file_kind}: open it with runtime='{owner.name}' "
                             f"(--runtime {owner.name}{install})")
    return backend


def open_runner(path: str | os.PathLike[str], spec: RuntimeSpec = RuntimeSpec(),
                overrides: Mapping[str, Any] | None = None) -> ModelRunner:
    """`path` opened by `spec.runtime`'s backend (None: the file's own) under `spec`.

    A file whose card says it was made for another runtime warns (`RuntimeMismatchWarning`), in one line.
    """
    backend = chosen_backend(path, spec.runtime)
    model = backend.open(Path(path), spec, dict(overrides or {}))
    line = mismatch(model.card, backend, path)
    if line is not None:
        warnings.warn(line, RuntimeMismatchWarning, stacklevel=3)
    return model


def mismatch(card: ModelCard, backend: Backend, path: str | os.PathLike[str]) -> str | None:
    """One line when `card` says the file was made for another runtime than `backend`'s, else None."""
    made_for = card.runtime
    if made_for is None or made_for == backend.name:
        return None
    install = backend_named(made_for).install if made_for in backend_names() else ""
    install = f", installed by {install}" if install else ""
    fix = (f"run it with runtime='{made_for}' (--runtime {made_for}){install}, or quantize the fp32 model for "
           f"{backend.name}: segedge quantize --for {backend.name}")
    return f"{path} was quantized for {made_for}, not {backend.name}: {fix}"


def _import(name: str) -> None:
    _registered.setdefault(name, importlib.import_module(_BUILT_IN[name]).BACKEND)


def _load_built_ins() -> None:
    for name in _BUILT_IN:
        if name not in _registered:
            _import(name)
