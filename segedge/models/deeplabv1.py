"""DeepLab v1, VGG16-LargeFOV (Chen et al., ICLR 2015): atrous VGG16 at output stride 8.

pool4 and pool5 become 3x3 / stride 1 / pad 1 and conv5 is dilated by 2, so VGG16's ImageNet
filters see the same neighbourhoods at 4x the density. fc6 is subsampled to 3x3 at dilation 12
with 1024 channels (the paper's Table 2 "LargeFOV": 20.5M parameters), fc7 is 1x1 with 1024,
both with ReLU and dropout 0.5; fc8 scores the classes. The stride-8 scores are upsampled
bilinearly to the input.

pool1-3 are 2x2 / stride 2 in ceil mode (torchvision's VGG geometry; DeepLab's Caffe net used
3x3 / stride 2 / pad 1, which has no parameters either): a stride-8 cell then spans 8 input
pixels from the top-left, so upsampling by exactly 8 and cropping lines up at any input size.
The paper's fully connected CRF post-processing is not part of the network.
"""

from __future__ import annotations

from torch import Tensor, nn

from runtimes.imaging.palette import VOC_CLASSES

from .align import upsample_and_crop
from .backbones.vgg import vgg16
from .registry import register_model

PAPER = "Chen et al., Semantic Image Segmentation with Deep Convolutional Nets and Fully Connected CRFs, ICLR 2015"


class LargeFOVHead(nn.Sequential):
    """fc6 (3x3, dilation 12, 1024), fc7 (1x1, 1024), fc8 (1x1 class scores)."""

    def __init__(self, in_ch: int, num_classes: int, channels: int = 1024, dilation: int = 12) -> None:
        super().__init__(
            nn.Conv2d(in_ch, channels, 3, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Conv2d(channels, num_classes, 1),
        )


class DeepLabV1(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = vgg16(output_stride=8, ceil_mode=True)
        self.classifier = LargeFOVHead(self.backbone.out_channels[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        scores = self.classifier(self.backbone(x)[-1])
        return upsample_and_crop(scores, self.backbone.output_stride, x)


@register_model(
    family="deeplabv1",
    paper=PAPER,
    size_divisor=8,
    reference_params=20_500_000,
    reference_note="paper Table 2, DeepLab-LargeFOV (rounded to 20.5M)",
)
def deeplabv1(*, num_classes: int = len(VOC_CLASSES)) -> nn.Module:
    return DeepLabV1(num_classes)
