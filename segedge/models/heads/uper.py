"""UperNet's head (Xiao et al., Unified Perceptual Parsing, ECCV 2018): PPM + FPN + fusion.

The deepest map (stride 32) goes through the pyramid pooling module and a 3x3 conv; it tops
an FPN whose lateral 1x1 convs and top-down sums build the shallower levels, each smoothed by
a 3x3 conv. All levels are resized to the stride-4 map, concatenated and fused by a 3x3 conv
before the classifier. 512 channels throughout, as in the authors' reference and mmseg.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..ops import ConvBNReLU, resize_to
from .ppm import PyramidPoolingModule


class UperNetHead(nn.Module):
    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 512,
        bins: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.ppm = PyramidPoolingModule(in_channels[-1], channels, bins)
        self.ppm_bottleneck = ConvBNReLU(self.ppm.out_channels, channels)
        self.lateral_convs = nn.ModuleList(
            ConvBNReLU(c, channels, kernel_size=1) for c in in_channels[:-1]
        )
        self.fpn_convs = nn.ModuleList(ConvBNReLU(channels, channels) for _ in in_channels[:-1])
        self.fuse = ConvBNReLU(len(in_channels) * channels, channels)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        levels = [conv(f) for conv, f in zip(self.lateral_convs, features)]
        levels.append(self.ppm_bottleneck(self.ppm(features[-1])))
        for i in range(len(levels) - 1, 0, -1):  # top-down: each level gets the coarser one's sum
            levels[i - 1] = levels[i - 1] + resize_to(levels[i], levels[i - 1].shape[-2:])
        outs = [conv(level) for conv, level in zip(self.fpn_convs, levels)] + [levels[-1]]
        size = outs[0].shape[-2:]
        fused = torch.cat([outs[0], *(resize_to(out, size) for out in outs[1:])], dim=1)
        return self.classifier(self.dropout(self.fuse(fused)))
