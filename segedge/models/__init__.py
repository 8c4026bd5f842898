"""The segedge model zoo. Importing this package registers every builder."""

from . import deeplabv3plus  # noqa: F401  (registers builders)
from .registry import ModelSpec, build_model, get_spec, list_models, register_model, resolve_name

__all__ = ["ModelSpec", "build_model", "get_spec", "list_models", "register_model", "resolve_name"]
