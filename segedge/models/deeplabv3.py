"""DeepLab v3 (Chen et al. 2017, Rethinking Atrous Convolution) with torchvision's layout.

`model.backbone` is the dilated ResNet, `model.classifier` torchvision's DeepLabHead (ASPP,
3x3 conv 256, BN, ReLU, 1x1 classifier), so a torchvision `deeplabv3_resnet*` state_dict without
its `aux_classifier.*` keys loads strict and gives the same logits. Output stride 8 (torchvision's
choice) uses ASPP rates 12/24/36, 16 uses 6/12/18. `multi_grid` defaults to (1, 1, 1) so
torchvision checkpoints reproduce; the paper's best is (1, 2, 4).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from runtimes.imaging.palette import VOC_CLASSES

from .backbones.base import Backbone
from .backbones.resnet import resnet50, resnet101
from .deeplabv3plus import aspp_rates
from .heads.aspp import ASPP
from .ops import SegmentationModel
from .registry import register_model

PAPER = "Chen et al., Rethinking Atrous Convolution for Semantic Image Segmentation, 2017"
NO_AUX = (
    "torchvision's count includes its training-only aux_classifier (FCNHead on layer3, 2,365,205 "
    "parameters at 21 classes), which segedge omits"
)


class DeepLabHead(nn.Sequential):
    def __init__(self, in_ch: int, num_classes: int, rates: Sequence[int]) -> None:
        super().__init__(
            ASPP(in_ch, rates),
            nn.Conv2d(256, 256, 3, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, num_classes, 1),
        )

    def forward(self, features: list[Tensor]) -> Tensor:
        return super().forward(features[-1])


def _deeplabv3(backbone: Backbone, num_classes: int, output_stride: int) -> SegmentationModel:
    head = DeepLabHead(backbone.out_channels[-1], num_classes, aspp_rates(output_stride))
    return SegmentationModel(backbone, head, head_name="classifier")


@register_model(
    family="deeplabv3", paper=PAPER, size_divisor=8, reference_params=42_004_074, reference_note=NO_AUX
)
def deeplabv3_resnet50(
    *,
    num_classes: int = len(VOC_CLASSES),
    output_stride: int = 8,
    multi_grid: tuple[int, int, int] = (1, 1, 1),
) -> nn.Module:
    return _deeplabv3(resnet50(output_stride, multi_grid), num_classes, output_stride)


@register_model(
    family="deeplabv3", paper=PAPER, size_divisor=8, reference_params=60_996_202, reference_note=NO_AUX
)
def deeplabv3_resnet101(
    *,
    num_classes: int = len(VOC_CLASSES),
    output_stride: int = 8,
    multi_grid: tuple[int, int, int] = (1, 1, 1),
) -> nn.Module:
    return _deeplabv3(resnet101(output_stride, multi_grid), num_classes, output_stride)
