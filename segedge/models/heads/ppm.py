"""Pyramid Pooling Module (PSPNet, Zhao et al. 2017), shared by PSPNet and UperNet.

Each stage averages the map into b x b bins (the exportable pool, so ONNX keeps dynamic
shapes), reduces channels with a 1x1 conv + BN + ReLU and resizes back; the stages are
concatenated with the input map. PSPNet reduces each stage to in/4 channels, UperNet to 512.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..adaptive_pool import ExportableAdaptiveAvgPool2d
from ..ops import ConvBNReLU, resize_to


class PoolingStage(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, bins: int) -> None:
        super().__init__(ExportableAdaptiveAvgPool2d(bins), ConvBNReLU(in_ch, out_ch, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        return resize_to(super().forward(x), x.shape[-2:])


class PyramidPoolingModule(nn.Module):
    def __init__(self, in_ch: int, stage_ch: int, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.stages = nn.ModuleList(PoolingStage(in_ch, stage_ch, b) for b in bins)
        self.out_channels = in_ch + len(bins) * stage_ch

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, *(stage(x) for stage in self.stages)], dim=1)
