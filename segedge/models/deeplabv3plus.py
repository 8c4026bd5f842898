"""DeepLab v3+ (Chen et al., ECCV 2018): ASPP encoder + a light decoder that refines boundaries.

Decoder (paper Fig. 2): project the stride-4 features to 48 channels, concatenate with the
ASPP output upsampled to their size, two 3x3 convs (256), a 1x1 classifier; the model then
upsamples bilinearly to the input size. Output stride 16 uses ASPP rates 6/12/18 (doubled at 8).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from runtimes.imaging.palette import VOC_CLASSES

from .backbones.base import Backbone
from .backbones.resnet import resnet50, resnet101
from .heads.aspp import ASPP
from .ops import ConvBNReLU, SegmentationModel, resize_to
from .registry import register_model

PAPER = "Chen et al., Encoder-Decoder with Atrous Separable Convolution, ECCV 2018"


def aspp_rates(output_stride: int) -> tuple[int, int, int]:
    """The paper's rates: (6, 12, 18) at output stride 16, doubled at 8."""
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
    return (6, 12, 18) if output_stride == 16 else (12, 24, 36)


class DeepLabV3PlusHead(nn.Module):
    def __init__(
        self,
        in_ch: int,
        low_level_ch: int,
        num_classes: int,
        rates: Sequence[int],
        low_level_index: int = 0,
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.low_level_index = low_level_index
        self.aspp = ASPP(in_ch, rates, 256, separable=separable, dropout=0.1)
        self.project = nn.Sequential(
            nn.Conv2d(low_level_ch, 48, 1, bias=False), nn.BatchNorm2d(48), nn.ReLU(inplace=True)
        )
        self.fuse = nn.Sequential(ConvBNReLU(256 + 48, 256), ConvBNReLU(256, 256))
        self.classifier = nn.Conv2d(256, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        low = self.project(features[self.low_level_index])
        high = resize_to(self.aspp(features[-1]), low.shape[-2:])
        return self.classifier(self.fuse(torch.cat([high, low], dim=1)))


def _deeplabv3plus_resnet(backbone: Backbone, num_classes: int, output_stride: int) -> SegmentationModel:
    head = DeepLabV3PlusHead(
        backbone.out_channels[-1], backbone.out_channels[0], num_classes, aspp_rates(output_stride)
    )
    return SegmentationModel(backbone, head)


@register_model(
    family="deeplabv3plus",
    paper=PAPER,
    aliases=("deeplabv3plus",),
    size_divisor=16,
    reference_params=None,
)
def deeplabv3plus_resnet50(*, num_classes: int = len(VOC_CLASSES), output_stride: int = 16) -> nn.Module:
    return _deeplabv3plus_resnet(resnet50(output_stride), num_classes, output_stride)


@register_model(family="deeplabv3plus", paper=PAPER, size_divisor=16)
def deeplabv3plus_resnet101(*, num_classes: int = len(VOC_CLASSES), output_stride: int = 16) -> nn.Module:
    return _deeplabv3plus_resnet(resnet101(output_stride), num_classes, output_stride)
