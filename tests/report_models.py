"""A user model whose builder does not seed: each build has different random weights, as zoo models do."""

from __future__ import annotations

from torch import nn

from tests.tiny_models import TinySegNet


def unseeded() -> nn.Module:
    return TinySegNet(4)
