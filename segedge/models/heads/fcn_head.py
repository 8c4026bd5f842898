"""torchvision's FCN head: a 3x3 conv to a quarter of the channels, BN, ReLU, dropout, 1x1 scores.

Named as torchvision's `FCNHead` (indices 0..4), so `classifier.*` keys of its FCN checkpoints
load as they are.
"""

from __future__ import annotations

from torch import nn


class FCNHead(nn.Sequential):
    def __init__(self, in_ch: int, num_classes: int) -> None:
        inter_ch = in_ch // 4
        super().__init__(
            nn.Conv2d(in_ch, inter_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter_ch),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Conv2d(inter_ch, num_classes, 1),
        )
