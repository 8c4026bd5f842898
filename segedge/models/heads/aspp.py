"""Atrous Spatial Pyramid Pooling (DeepLab v3, Chen et al. 2017), with torchvision's layer names.

Five parallel branches over the deepest features: a 1x1 conv, three 3x3 atrous convs, and
image-level pooling, each followed by BN + ReLU; concatenated and projected by a 1x1 conv.
`separable=True` gives DeepLab v3+'s atrous separable convolutions (Xception/MobileNet variants).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..ops import resize_to


class ASPPConv(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, dilation: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class ASPPSeparableConv(nn.Sequential):
    """Depthwise 3x3 atrous conv, then pointwise 1x1 (DeepLab v3+ Sec. 3.2)."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, in_ch, 3, padding=dilation, dilation=dilation, groups=in_ch, bias=False),
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class ASPPPooling(nn.Sequential):
    """Image-level features: global average, 1x1 conv, BN, ReLU, broadcast back to the map size."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return resize_to(super().forward(x), x.shape[-2:])


class ASPP(nn.Module):
    def __init__(
        self,
        in_ch: int,
        rates: Sequence[int] = (12, 24, 36),
        out_ch: int = 256,
        separable: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        atrous = ASPPSeparableConv if separable else ASPPConv
        branches: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))
        ]
        branches += [atrous(in_ch, out_ch, rate) for rate in rates]
        branches.append(ASPPPooling(in_ch, out_ch))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * out_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))
