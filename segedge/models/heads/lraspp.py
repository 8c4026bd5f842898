"""Lite R-ASPP (MobileNetV3 paper, Sec. 6.3) with torchvision's layer names.

The deep features go through a 1x1 conv + BN + ReLU (`cbr`) gated per channel by a sigmoid of
their global average (`scale`), are upsampled to the stride-8 features and classified; the
stride-8 features get their own 1x1 classifier; the two logits are summed.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..ops import resize_to


class LRASPPHead(nn.Module):
    def __init__(
        self, low_ch: int, high_ch: int, num_classes: int, inter_ch: int = 128, low_level_index: int = 1
    ) -> None:
        super().__init__()
        self.low_level_index = low_level_index
        self.cbr = nn.Sequential(
            nn.Conv2d(high_ch, inter_ch, 1, bias=False), nn.BatchNorm2d(inter_ch), nn.ReLU(inplace=True)
        )
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(high_ch, inter_ch, 1, bias=False), nn.Sigmoid()
        )
        self.low_classifier = nn.Conv2d(low_ch, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter_ch, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        low, high = features[self.low_level_index], features[-1]
        gated = resize_to(self.cbr(high) * self.scale(high), low.shape[-2:])
        return self.low_classifier(low) + self.high_classifier(gated)
