"""DeepLab v3+ on MobileNetV2: the edge model of the DeepLab v3+ family.

MobileNetV2 runs at output stride 16 (the stride-32 stage dilated) and stops at its 320-channel
block, as TF DeepLab's MobileNetV2 does; the decoder takes the stride-4 features (24 channels).
ASPP uses the paper's atrous separable convolutions, cheap on an edge device; the decoder's two
3x3 convs are regular. `width_mult` thins the backbone (0.5: a model small enough to train on a
CPU in minutes); the head keeps its 256 channels.
"""

from __future__ import annotations

from torch import nn

from runtimes.imaging.palette import VOC_CLASSES

from .backbones.mobilenetv2 import MobileNetV2
from .deeplabv3plus import PAPER, DeepLabV3PlusHead, aspp_rates
from .ops import SegmentationModel
from .registry import register_model

NOTE = (
    "no reference count: TF DeepLab's MobileNetV2 checkpoints have no decoder, and PyTorch ports "
    "differ in ASPP (regular vs separable)"
)


@register_model(family="deeplabv3plus", paper=PAPER, size_divisor=16, reference_note=NOTE)
def deeplabv3plus_mobilenetv2(
    *, num_classes: int = len(VOC_CLASSES), output_stride: int = 16, width_mult: float = 1.0
) -> nn.Module:
    backbone = MobileNetV2(output_stride, width_mult)
    head = DeepLabV3PlusHead(
        backbone.out_channels[-1],
        backbone.out_channels[0],
        num_classes,
        aspp_rates(output_stride),
        low_level_index=0,
        separable=True,
    )
    return SegmentationModel(backbone, head)
