"""The model registry: one decorator registers a keyword-only builder with its defaults.

    @register_model(family="deeplabv3plus", paper="Chen et al. 2018", aliases=("deeplabv3plus",),
                    size_divisor=16)
    def deeplabv3plus_resnet50(*, num_classes: int = 21, output_stride: int = 16) -> nn.Module:
        ...

`build_model(name, **kwargs)` resolves aliases, rejects unknown keywords with a `UsageError`
naming the accepted ones, and returns the module in eval mode.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from runtimes.model.card import IMAGENET_MEAN, IMAGENET_STD
from runtimes.errors import UsageError

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A registered builder and the defaults that go into the model card."""

    name: str
    builder: Builder
    family: str
    paper: str
    aliases: tuple[str, ...] = ()
    input_size: tuple[int, int] = (512, 512)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    size_divisor: int = 1
    # Pixels lost on each border by valid (unpadded) convolutions, as a function of the builder's
    # keywords: U-Net "valid" loses 92, "same" loses 0.
    valid_margin: Callable[[dict[str, Any]], int] = field(default=lambda kwargs: 0)
    reference_params: int | None = None
    reference_note: str = ""

    @property
    def defaults(self) -> dict[str, Any]:
        """The builder's keyword defaults, e.g. {'num_classes': 21, 'output_stride': 16}."""
        params = inspect.signature(self.builder).parameters.values()
        return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    @property
    def num_classes(self) -> int:
        return int(self.defaults.get("num_classes", 21))


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}


def register_model(
    *,
    family: str,
    paper: str,
    aliases: tuple[str, ...] = (),
    **spec_fields: Any,
) -> Callable[[Builder], Builder]:
    """Register a keyword-only builder under its function name (and `aliases`)."""

    def decorate(builder: Builder) -> Builder:
        name = builder.__name__
        positional = [
            p.name
            for p in inspect.signature(builder).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_KEYWORD)
        ]
        if positional:
            raise TypeError(f"builder {name} must take keyword-only arguments, got {positional}")
        for key in (name, *aliases):
            if key in _REGISTRY or key in _ALIASES:
                raise ValueError(f"model name {key!r} is registered twice")
        _REGISTRY[name] = ModelSpec(
            name=name, builder=builder, family=family, paper=paper, aliases=aliases, **spec_fields
        )
        for alias in aliases:
            _ALIASES[alias] = name
        return builder

    return decorate


def resolve_name(name: str) -> str:
    """The registered name for `name` or one of its aliases."""
    if name in _REGISTRY:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    close = difflib.get_close_matches(name, [*_REGISTRY, *_ALIASES], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UsageError(f"unknown model {name!r}{hint}; `segedge models` lists them")


def get_spec(name: str) -> ModelSpec:
    return _REGISTRY[resolve_name(name)]


def list_models() -> list[ModelSpec]:
    return sorted(_REGISTRY.values(), key=lambda s: (s.family, s.name))


def aliases() -> dict[str, str]:
    return dict(_ALIASES)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model in eval mode; unknown keywords are a `UsageError`."""
    spec = get_spec(name)
    accepted = spec.defaults
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise UsageError(
            f"{spec.name} does not take {', '.join(unknown)}; it takes {', '.join(sorted(accepted))}"
        )
    try:
        model = spec.builder(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{spec.name}: {exc}") from None
    return model.eval()
