"""FCN (Long, Shelhamer & Darrell, CVPR 2015): VGG16 FCN-32s/16s/8s, and torchvision's ResNet FCNs.

VGG16 FCNs (paper Sec. 3-4, Fig. 3): fc6/fc7 become convolutions (7x7 and 1x1, 4096 channels,
ReLU, dropout 0.5; `fc_channels` narrows them, e.g. for fast tests), `score_fr` is a 1x1 class
scorer. FCN-16s adds `score_pool4` to the stride-32 scores upsampled 2x (`upscore2`); FCN-8s
then adds `score_pool3` to that sum upsampled 2x (`upscore_pool4`). The 2x upsamplings are learnable transposed convolutions initialised to
bilinear; the final upsampling (32x, 16x, 8x) is fixed bilinear interpolation, as the paper fixes
it, written as `resize_to` so it has no parameters. Layer names are the reference Caffe nets'.

Any input size without the paper's 100-pixel input padding: fc6 pads by 3 so it keeps the map
size, the pools are ceil-mode so stage k is ceil(H / 2^k), each upsampled map is cropped
top-left to the finer map's size, and the final map is upsampled by exactly its stride and
cropped to the input (see `align`). fc6/fc7 start He-initialised like the VGG convolutions (see
`backbones.vgg`); score layers use PyTorch's default initialisation (the paper zero-initialises
them before fine-tuning).

ResNet FCNs are torchvision's `fcn_resnet50/101`: ResNet at output stride 8 + `FCNHead` on
layer4, resized to the input; the head lives under `classifier` as in torchvision, so its
checkpoints (without the training-only `aux_classifier.*`) load with strict=True.
"""

from __future__ import annotations

from torch import Tensor, nn

from runtimes.imaging.palette import VOC_CLASSES

from .align import bilinear_upsampling, crop_to, upsample_and_crop
from .backbones.resnet import ResNet, resnet50, resnet101
from .backbones.vgg import he_init, vgg16
from .heads.fcn_head import FCNHead
from .ops import SegmentationModel
from .registry import register_model

PAPER = "Long et al., Fully Convolutional Networks for Semantic Segmentation, CVPR 2015"
VGG_NOTE = "paper Table 1 (FCN-VGG16, rounded); the fixed final upsampling has no parameters here"


class FullyConnectedAsConv(nn.Sequential):
    """A VGG fully connected layer as a convolution: conv, ReLU, dropout 0.5."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
        )
        he_init(self)  # ReLU follows, as after VGG's convolutions


class FCNVGG16(nn.Module):
    """FCN-32s (`stride=32`), FCN-16s (16) or FCN-8s (8) on VGG16."""

    def __init__(self, num_classes: int, stride: int, fc_channels: int = 4096) -> None:
        super().__init__()
        if stride not in (8, 16, 32):
            raise ValueError(f"stride must be 8, 16 or 32, got {stride}")
        if fc_channels < 1:
            raise ValueError(f"fc_channels must be positive, got {fc_channels}")
        self.stride = stride
        self.backbone = vgg16(ceil_mode=True)
        self.fc6 = FullyConnectedAsConv(512, fc_channels, 7)
        self.fc7 = FullyConnectedAsConv(fc_channels, fc_channels, 1)
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
        if stride <= 16:
            self.upscore2 = bilinear_upsampling(num_classes, 2)
            self.score_pool4 = nn.Conv2d(512, num_classes, 1)
        if stride == 8:
            self.upscore_pool4 = bilinear_upsampling(num_classes, 2)
            self.score_pool3 = nn.Conv2d(256, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        _, _, pool3, pool4, pool5 = self.backbone(x)
        score = self.score_fr(self.fc7(self.fc6(pool5)))
        if self.stride <= 16:
            skip = self.score_pool4(pool4)
            score = crop_to(self.upscore2(score), skip) + skip
        if self.stride == 8:
            skip = self.score_pool3(pool3)
            score = crop_to(self.upscore_pool4(score), skip) + skip
        return upsample_and_crop(score, self.stride, x)


class FCNHeadOnLast(FCNHead):
    """torchvision's FCN head over the deepest feature map of a backbone's list."""

    def forward(self, features: list[Tensor]) -> Tensor:
        return super().forward(features[-1])


def _fcn_resnet(backbone: ResNet, num_classes: int) -> SegmentationModel:
    head = FCNHeadOnLast(backbone.out_channels[-1], num_classes)
    return SegmentationModel(backbone, head, head_name="classifier")


@register_model(
    family="fcn", paper=PAPER, size_divisor=32, reference_params=134_000_000, reference_note=VGG_NOTE
)
def fcn32s(*, num_classes: int = len(VOC_CLASSES), fc_channels: int = 4096) -> nn.Module:
    return FCNVGG16(num_classes, stride=32, fc_channels=fc_channels)


@register_model(
    family="fcn", paper=PAPER, size_divisor=32, reference_params=134_000_000, reference_note=VGG_NOTE
)
def fcn16s(*, num_classes: int = len(VOC_CLASSES), fc_channels: int = 4096) -> nn.Module:
    return FCNVGG16(num_classes, stride=16, fc_channels=fc_channels)


@register_model(
    family="fcn", paper=PAPER, size_divisor=32, reference_params=134_000_000, reference_note=VGG_NOTE
)
def fcn8s(*, num_classes: int = len(VOC_CLASSES), fc_channels: int = 4096) -> nn.Module:
    return FCNVGG16(num_classes, stride=8, fc_channels=fc_channels)


# torchvision's counts include its auxiliary FCNHead on layer3 (1024 -> 256 -> 21: 2,365,205).
@register_model(
    family="fcn",
    paper=PAPER,
    size_divisor=8,
    reference_params=35_322_218,
    reference_note="torchvision's count includes aux_classifier (2,365,205); without it 32,957,013",
)
def fcn_resnet50(*, num_classes: int = len(VOC_CLASSES)) -> nn.Module:
    return _fcn_resnet(resnet50(output_stride=8), num_classes)


@register_model(
    family="fcn",
    paper=PAPER,
    size_divisor=8,
    reference_params=54_314_346,
    reference_note="torchvision's count includes aux_classifier (2,365,205); without it 51,949,141",
)
def fcn_resnet101(*, num_classes: int = len(VOC_CLASSES)) -> nn.Module:
    return _fcn_resnet(resnet101(output_stride=8), num_classes)
