"""UperNet on Swin Transformer (Liu et al., ICCV 2021, Sec. 4.3: ADE20K semantic segmentation).

The Swin-T/S/B backbone (`backbones/swin.py`, torchvision's layer names) gives four LayerNormed
levels at strides 4-32 to the zoo's UperNet head (PPM + FPN, 512 channels: `channels` narrows it; `heads/uper.py`, the
same as mmseg's UPerHead); the stride-4 logits are resized bilinearly to the input size.
ADE20K's 150 classes by default. The paper's models also train an auxiliary FCN head on
stage 3; it is training-only and omitted here. Stochastic depth 0.3 for all three, as in the
paper's segmentation configs (it is the identity at inference).

One exported graph (either exporter, dynamic N/H/W) is right at every input size. The dynamo
exporter's sample must give every stage's map 2 tokens or more per side, which 64 pixels per
side always does (tested from 65 x 47): where a map is one token wide (a 30 x 30 sample: 1 x 1
at stage 4), torch.export specialises the graph to that size.
"""

from __future__ import annotations

from torch import nn

from .backbones.swin import SwinTransformer, swin_b, swin_s, swin_t
from .heads.uper import UperNetHead
from .ops import SegmentationModel
from .registry import register_model

PAPER = (
    "Liu et al., Swin Transformer: Hierarchical Vision Transformer using Shifted Windows, ICCV 2021; "
    "UperNet: Xiao et al., ECCV 2018"
)
ADE20K_CLASSES = 150


def aux_head_params(in_channels: int, num_classes: int = ADE20K_CLASSES, channels: int = 256) -> int:
    """Parameters of the paper's (mmseg's) auxiliary FCN head: 3x3 conv without bias, BN, 1x1 to classes."""
    return in_channels * channels * 9 + 2 * channels + channels * num_classes + num_classes


def _note(variant: str, dims: tuple[int, int, int, int], segedge_params: int) -> str:
    aux = aux_head_params(dims[2])
    return (
        f"paper Table 3 (rounded to 1M) counts the training-only auxiliary FCN head on stage 3 ({aux:,} params), "
        f"omitted here: with it {segedge_params + aux:,}. Backbone: torchvision's swin_{variant} less its "
        f"classifier and final norm, plus a LayerNorm per output level ({2 * sum(dims):,})"
    )


def _upernet(backbone: SwinTransformer, num_classes: int, channels: int) -> SegmentationModel:
    # `channels` (512 in the paper) and the stochastic depth (`drop_path_rate`, training only) are the
    # builders' knobs for short trainings: the demo recipe narrows the head and lowers the rate.
    return SegmentationModel(backbone, UperNetHead(backbone.out_channels, num_classes, channels=channels))


# The segedge counts in the notes are the code's own (tests/models/test_swin_upernet.py checks them).
@register_model(
    family="upernet", paper=PAPER, size_divisor=32, reference_params=60_000_000,
    reference_note=_note("t", (96, 192, 384, 768), 59_018_064),
)
def upernet_swin_t(
    *, num_classes: int = ADE20K_CLASSES, channels: int = 512, drop_path_rate: float = 0.3
) -> nn.Module:
    return _upernet(swin_t(drop_path_rate), num_classes, channels)


@register_model(
    family="upernet", paper=PAPER, size_divisor=32, reference_params=81_000_000,
    reference_note=_note("s", (96, 192, 384, 768), 80_335_968),
)
def upernet_swin_s(
    *, num_classes: int = ADE20K_CLASSES, channels: int = 512, drop_path_rate: float = 0.3
) -> nn.Module:
    return _upernet(swin_s(drop_path_rate), num_classes, channels)


@register_model(
    family="upernet", paper=PAPER, size_divisor=32, reference_params=121_000_000,
    reference_note=_note("b", (128, 256, 512, 1024), 120_061_006),
)
def upernet_swin_b(
    *, num_classes: int = ADE20K_CLASSES, channels: int = 512, drop_path_rate: float = 0.3
) -> nn.Module:
    return _upernet(swin_b(drop_path_rate), num_classes, channels)
