"""UperNet (Xiao et al., Unified Perceptual Parsing for Scene Understanding, ECCV 2018).

An undilated ResNet (output stride 32) gives four levels (strides 4-32) to the PPM + FPN head
in `heads/uper.py`; the model upsamples the stride-4 logits bilinearly to the input size.
Defaults to ADE20K's 150 classes, the paper's benchmark. No auxiliary head (training only).
"""

from __future__ import annotations

from torch import nn

from .backbones.base import Backbone
from .backbones.resnet import resnet50, resnet101
from .heads.uper import UperNetHead
from .ops import SegmentationModel
from .registry import register_model

PAPER = "Xiao et al., Unified Perceptual Parsing for Scene Understanding, ECCV 2018"
ADE20K_CLASSES = 150
NOTE = (
    "torchvision-style ResNet stem (one 7x7 conv) where the authors and mmseg use three 3x3 convs; "
    "no auxiliary head (training only)"
)


def _upernet(backbone: Backbone, num_classes: int) -> SegmentationModel:
    return SegmentationModel(backbone, UperNetHead(backbone.out_channels, num_classes))


@register_model(family="upernet", paper=PAPER, aliases=("upernet",), size_divisor=32, reference_note=NOTE)
def upernet_resnet50(*, num_classes: int = ADE20K_CLASSES) -> nn.Module:
    return _upernet(resnet50(output_stride=32), num_classes)


@register_model(family="upernet", paper=PAPER, size_divisor=32, reference_note=NOTE)
def upernet_resnet101(*, num_classes: int = ADE20K_CLASSES) -> nn.Module:
    return _upernet(resnet101(output_stride=32), num_classes)
