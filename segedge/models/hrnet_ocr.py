"""HRNet + OCR (Yuan et al., Object-Contextual Representations, ECCV 2020) on HRNetV2-W18 / W48.

The OCR head runs on HRNetV2's representation (all four branches concatenated at stride 4:
15C channels); the logits are resized to the input. Defaults follow the official
HRNet-Semantic-Segmentation (HRNet-OCR branch) Cityscapes models: 19 classes, 512 x 1024 crops.
Inside the model, keys match the official checkpoints' with `backbone.` before the HRNet keys
and `head.` before the OCR keys (`conv3x3_ocr`, `aux_head`, `ocr_distri_head`, `cls_head`).
"""

from __future__ import annotations

from torch import Tensor, nn

from .backbones.hrnet import HRNet, hrnetv2_representation
from .heads.ocr import OCRHead
from .ops import SegmentationModel
from .registry import register_model

PAPER = (
    "Yuan et al., Object-Contextual Representations for Semantic Segmentation, ECCV 2020; "
    "HRNetV2: Wang et al., Deep High-Resolution Representation Learning for Visual Recognition, TPAMI 2020"
)
CITYSCAPES_CLASSES = 19
CITYSCAPES_CROP = (512, 1024)


class HRNetOCRHead(OCRHead):
    def forward(self, features: list[Tensor]) -> Tensor:  # type: ignore[override]
        return super().forward(hrnetv2_representation(features))


def _hrnet_ocr(width: int, num_classes: int) -> SegmentationModel:
    backbone = HRNet(width)
    return SegmentationModel(backbone, HRNetOCRHead(sum(backbone.out_channels), num_classes))


@register_model(
    family="hrnet_ocr",
    paper=PAPER,
    input_size=CITYSCAPES_CROP,
    size_divisor=32,
    reference_note="no published count for W18 + OCR",
)
def hrnet_w18_ocr(*, num_classes: int = CITYSCAPES_CLASSES) -> nn.Module:
    return _hrnet_ocr(18, num_classes)


@register_model(
    family="hrnet_ocr",
    paper=PAPER,
    aliases=("hrnet_ocr",),
    input_size=CITYSCAPES_CROP,
    size_divisor=32,
    reference_params=70_300_000,
    reference_note="HRNet-Semantic-Segmentation README (HRNet-OCR branch), HRNetV2-W48 + OCR, Cityscapes "
    "(19 classes), rounded to 70.3M",
)
def hrnet_w48_ocr(*, num_classes: int = CITYSCAPES_CLASSES) -> nn.Module:
    return _hrnet_ocr(48, num_classes)
