"""PSPNet (Zhao et al., Pyramid Scene Parsing Network, CVPR 2017).

A dilated ResNet (output stride 8) feeds the pyramid pooling module (bins 1, 2, 3, 6, each
reduced to in/4 channels), then a 3x3 conv (512) + BN + ReLU, dropout 0.1 and a 1x1
classifier; the model upsamples bilinearly to the input size. The training-only auxiliary
head on layer3 is left out. The pooling is the exportable one: ONNX keeps dynamic H/W.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn

from runtimes.imaging.palette import VOC_CLASSES

from .backbones.base import Backbone
from .backbones.resnet import resnet50, resnet101
from .heads.ppm import PyramidPoolingModule
from .ops import ConvBNReLU, SegmentationModel
from .registry import register_model

PAPER = "Zhao et al., Pyramid Scene Parsing Network, CVPR 2017"
NOTE = (
    "torchvision-style ResNet stem (one 7x7 conv) where the paper and mmseg use three 3x3 convs; "
    "no auxiliary head (training only)"
)


class PSPHead(nn.Sequential):
    def __init__(self, in_ch: int, num_classes: int, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        ppm = PyramidPoolingModule(in_ch, in_ch // 4, bins)
        super().__init__(
            OrderedDict(
                ppm=ppm,
                bottleneck=ConvBNReLU(ppm.out_channels, 512),
                dropout=nn.Dropout2d(0.1),
                classifier=nn.Conv2d(512, num_classes, 1),
            )
        )

    def forward(self, features: list[Tensor]) -> Tensor:
        return super().forward(features[-1])


def _pspnet(backbone: Backbone, num_classes: int) -> SegmentationModel:
    return SegmentationModel(backbone, PSPHead(backbone.out_channels[-1], num_classes))


@register_model(family="pspnet", paper=PAPER, aliases=("pspnet",), size_divisor=8, reference_note=NOTE)
def pspnet_resnet50(*, num_classes: int = len(VOC_CLASSES)) -> nn.Module:
    return _pspnet(resnet50(output_stride=8), num_classes)


@register_model(family="pspnet", paper=PAPER, size_divisor=8, reference_note=NOTE)
def pspnet_resnet101(*, num_classes: int = len(VOC_CLASSES)) -> nn.Module:
    return _pspnet(resnet101(output_stride=8), num_classes)
