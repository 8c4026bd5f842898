"""torchvision's two MobileNetV3-Large segmentation models, with its layout and layer names.

Both run the backbone at output stride 16 (torchvision's `dilated=True`) and keep the head under
`classifier`, so a torchvision state_dict (without `aux_classifier.*`) loads strict and gives
the same logits:
- `deeplabv3_mobilenet_v3_large`: DeepLab v3's head (ASPP rates 12/24/36, torchvision's choice
  even at stride 16) on the 960-channel last conv;
- `lraspp_mobilenet_v3_large`: Lite R-ASPP on the stride-8 C2 block (40 ch) and the last conv.
"""

from __future__ import annotations

from torch import nn

from runtimes.imaging.palette import VOC_CLASSES

from .backbones.mobilenetv3 import MobileNetV3Large
from .deeplabv3 import DeepLabHead
from .heads.lraspp import LRASPPHead
from .ops import SegmentationModel
from .registry import register_model

MOBILENETV3 = "Howard et al., Searching for MobileNetV3, ICCV 2019"
DEEPLABV3 = "Chen et al., Rethinking Atrous Convolution for Semantic Image Segmentation, 2017"
TORCHVISION_RATES = (12, 24, 36)


@register_model(
    family="deeplabv3",
    paper=f"{DEEPLABV3}; backbone {MOBILENETV3}",
    size_divisor=16,
    reference_params=11_029_328,
    reference_note="torchvision's count includes its training-only aux_classifier (FCNHead on C2, "
    "3,851 params at 21 classes), which segedge omits: 11,025,477 without it",
)
def deeplabv3_mobilenet_v3_large(*, num_classes: int = len(VOC_CLASSES)) -> nn.Module:
    backbone = MobileNetV3Large(output_stride=16)
    head = DeepLabHead(backbone.out_channels[-1], num_classes, TORCHVISION_RATES)
    return SegmentationModel(backbone, head, head_name="classifier")


@register_model(
    family="lraspp",
    paper=MOBILENETV3,
    aliases=("lraspp",),
    size_divisor=16,
    reference_params=3_221_538,
    reference_note="torchvision lraspp_mobilenet_v3_large, 21 classes",
)
def lraspp_mobilenet_v3_large(*, num_classes: int = len(VOC_CLASSES)) -> nn.Module:
    backbone = MobileNetV3Large(output_stride=16)
    low_level_index = backbone.reductions.index(8)
    head = LRASPPHead(backbone.out_channels[low_level_index], backbone.out_channels[-1], num_classes,
                      low_level_index=low_level_index)
    return SegmentationModel(backbone, head, head_name="classifier")
