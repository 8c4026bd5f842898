"""Building the PyTorch model a source names, with the model card that goes with it.

A source is a zoo name or the user's own `module:function` / `file.py:function`. Either way the
result is an `nn.Module` in eval mode and a `ModelCard` whose `source` and `build_kwargs` let
`segedge verify` rebuild the very same PyTorch reference later.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from torch import nn

from runtimes.model.card import ModelCard
from runtimes.errors import UsageError
from runtimes.imaging.palette import default_class_names, default_palette

from segedge import __version__
from segedge.models import build_model, get_spec
from segedge.sources.user import load_user_function


@dataclass(frozen=True)
class BuiltModel:
    module: nn.Module
    card: ModelCard


def is_user_source(source: str) -> bool:
    """`pkg.mod:fn` and `path/file.py:fn` name user code; zoo names never hold a colon."""
    return ":" in source


# Without --weights a model is randomly initialised. Every build starts from this seed, so the
# export, `segedge verify`'s rebuilt reference and every PyTorch peer are the same network.
INIT_SEED = 0


def build(source: str, num_classes: int | None = None, options: dict[str, Any] | None = None) -> BuiltModel:
    """Build the model named by `source` (initialised from `INIT_SEED`), with its card fields."""
    import torch

    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(INIT_SEED)
        return _build(source, num_classes, options)


def _build(source: str, num_classes: int | None, options: dict[str, Any] | None) -> BuiltModel:
    if is_user_source(source):
        return _build_user(source, num_classes)
    spec = get_spec(source)
    kwargs = dict(options or {})
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    module = build_model(spec.name, **kwargs)
    resolved = {**spec.defaults, **kwargs}
    n = int(resolved.get("num_classes", spec.num_classes))
    card = ModelCard(
        name=spec.name,
        architecture=spec.family,
        source=spec.name,
        build_kwargs=kwargs,
        classes=default_class_names(n),
        palette=default_palette(n),
        mean=spec.mean,
        std=spec.std,
        input_size=spec.input_size,
        size_divisor=spec.size_divisor,
        valid_margin=spec.valid_margin(resolved),
        output_kind="logits" if n > 1 else "logit",
        segedge_version=__version__,
    )
    return BuiltModel(module, card)


def _build_user(source: str, num_classes: int | None) -> BuiltModel:
    function = load_user_function(source)
    kwargs = {}
    if num_classes is not None:
        if "num_classes" not in inspect.signature(function).parameters:
            raise UsageError(f"{source} does not take num_classes; drop --num-classes or add the parameter")
        kwargs["num_classes"] = num_classes
    try:
        module = function(**kwargs)
    except Exception as exc:  # user code: any failure is reported as theirs
        raise UsageError(f"{source} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(module, nn.Module):
        raise UsageError(f"{source} returned {type(module).__name__}, not a torch.nn.Module")
    card = ModelCard(
        name=function.__name__,
        architecture="user",
        source=source,
        build_kwargs=kwargs,
        segedge_version=__version__,
    )
    return BuiltModel(module.eval(), card)
