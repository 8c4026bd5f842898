"""Stochastic depth (Huang et al. 2016) for the transformer backbones: during training a
residual branch is dropped for whole samples and the kept ones are rescaled; at inference it
is the identity (and exports as nothing). torchvision's `StochasticDepth(p, "row")`."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DropPath(nn.Module):
    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
        return x * noise.bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def linear_drop_rates(total_rate: float, depths: list[int] | tuple[int, ...]) -> list[float]:
    """Per-block rates rising linearly from 0 to `total_rate` over all blocks (both papers' rule)."""
    blocks = sum(depths)
    return [total_rate * i / max(blocks - 1, 1) for i in range(blocks)]
