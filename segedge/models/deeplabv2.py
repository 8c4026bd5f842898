"""DeepLab v2 (Chen et al., TPAMI 2017): dilated ResNet-101 at output stride 8 and ASPP-L.

ASPP-L (paper Fig. 4, Table 3) is four parallel 3x3 atrous convolutions at rates 6, 12, 18
and 24, each a classifier straight from the 2048-channel features; their class scores are
summed, then bilinearly upsampled to the input size. No CRF (a post-process, not the network).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from runtimes.imaging.palette import VOC_CLASSES

from .backbones.resnet import resnet101
from .ops import SegmentationModel
from .registry import register_model

PAPER = (
    "Chen et al., DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, "
    "Atrous Convolution, and Fully Connected CRFs, TPAMI 2017"
)


class AtrousClassifierSum(nn.Module):
    """ASPP-L: one atrous 3x3 classifier per rate, scores summed."""

    def __init__(self, in_ch: int, num_classes: int, rates: Sequence[int] = (6, 12, 18, 24)) -> None:
        super().__init__()
        convs = [nn.Conv2d(in_ch, num_classes, 3, padding=rate, dilation=rate) for rate in rates]
        for conv in convs:  # the reference initialises the classifiers with N(0, 0.01)
            nn.init.normal_(conv.weight, std=0.01)
            assert conv.bias is not None  # made with a bias above
            nn.init.zeros_(conv.bias)
        self.branches = nn.ModuleList(convs)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = features[-1]
        scores = self.branches[0](x)
        for branch in self.branches[1:]:
            scores = scores + branch(x)
        return scores


@register_model(
    family="deeplabv2",
    paper=PAPER,
    size_divisor=8,
    reference_note=(
        "torchvision ResNet-101 (v1.5: stride on the 3x3 conv); the paper's Caffe model strides the 1x1"
    ),
)
def deeplabv2(*, num_classes: int = len(VOC_CLASSES)) -> nn.Module:
    backbone = resnet101(output_stride=8)
    return SegmentationModel(backbone, AtrousClassifierSum(backbone.out_channels[-1], num_classes))
