"""DeepLab v3+ on the modified aligned Xception-65: the paper's best model (Chen et al., ECCV 2018).

Output stride 16, ASPP with atrous separable convolutions (rates 6/12/18) and a decoder whose
two 3x3 convs are separable too (depthwise -> BN -> ReLU -> pointwise -> BN -> ReLU, as TF
DeepLab's `decoder_use_separable_conv`). The decoder's low-level features are TF DeepLab's: the
256-channel output of entry block 2's second separable conv, at stride 4 (popular PyTorch ports
take entry block 1's 128-channel output instead).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from runtimes.imaging.palette import VOC_CLASSES

from .backbones.xception import Xception65
from .deeplabv3plus import PAPER, DeepLabV3PlusHead, aspp_rates
from .heads.aspp import ASPPSeparableConv
from .ops import SegmentationModel
from .registry import register_model

NOTE = (
    "~41M as usually quoted for TF DeepLab's xception65 v3+ (the paper gives none); the layers match "
    "TF's graph (BN after every depthwise conv, 256-ch low-level), so the count does too; only the "
    "ReLU between depthwise and pointwise (paper) differs from TF's entry/middle flow, no parameters"
)


class SeparableDeepLabV3PlusHead(DeepLabV3PlusHead):
    """DeepLab v3+'s head with separable ASPP and separable decoder convs."""

    def __init__(
        self, in_ch: int, low_level_ch: int, num_classes: int, rates: Sequence[int], low_level_index: int = 0
    ) -> None:
        super().__init__(in_ch, low_level_ch, num_classes, rates, low_level_index, separable=True)
        self.fuse = nn.Sequential(ASPPSeparableConv(256 + 48, 256, 1), ASPPSeparableConv(256, 256, 1))


@register_model(
    family="deeplabv3plus", paper=PAPER, size_divisor=16, reference_params=41_000_000, reference_note=NOTE
)
def deeplabv3plus_xception65(*, num_classes: int = len(VOC_CLASSES), output_stride: int = 16) -> nn.Module:
    backbone = Xception65(output_stride)
    head = SeparableDeepLabV3PlusHead(
        backbone.out_channels[-1], backbone.out_channels[0], num_classes, aspp_rates(output_stride)
    )
    return SegmentationModel(backbone, head)
