"""User models (`file.py:function`) for the Core ML tests: one that upsamples by a scale factor, which
coremltools converts with flexible H/W, beside the zoo's, which upsample to a computed size."""

from __future__ import annotations

import torch
from torch import nn


class ScaledNet(nn.Module):
    """Stride 4 down, a 1x1 head, bilinear x4 up: sides must be multiples of 4."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU())
        self.head = nn.Conv2d(32, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(self.head(self.down(x)), scale_factor=4.0, mode="bilinear")


def build_scaled(num_classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return ScaledNet(num_classes)
