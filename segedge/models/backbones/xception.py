"""Aligned Xception-65, modified as in DeepLab v3+ (Chen et al., ECCV 2018, Sec. 3.3), as a backbone.

Entry flow (two 3x3 convs, three blocks of 128, 256, 728 channels), 16 middle-flow blocks of
728 and an exit flow of (728, 1024, 1024) and (1536, 1536, 2048). Every max pooling is a
separable conv with stride 2, and every 3x3 depthwise conv is followed by BN + ReLU (the
paper's change, MobileNet style). A block is three separable convs plus a shortcut (1x1 conv +
BN when shape changes, identity in the middle flow, none in the last block); as in Xception and
TF DeepLab, ReLU comes before each separable conv, except in the last block where it comes after.

Past `output_stride` a block's stride becomes dilation and the block keeps the previous rate (TF
DeepLab's rule): at 16, exit block 1 runs at rate 1 and exit block 2 at rate 2.

Features returned: TF DeepLab's decoder end point `entry_flow/block2/unit_1/.../separable_conv2`
(256 channels at stride 4, inside entry block 2), the outputs of entry blocks 2 and 3, and the
exit flow's 2048 channels.
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import Backbone, stride_to_dilation

MIDDLE_BLOCKS = 16


class SeparableConv(nn.Sequential):
    """3x3 depthwise (strided or atrous) -> BN -> ReLU -> 1x1 pointwise -> BN."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, in_ch, 3, stride, dilation, dilation, groups=in_ch, bias=False),
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )


class XceptionBlock(nn.Module):
    """Three separable convs (the last one strided) plus a shortcut: 'conv', 'sum' or 'none'."""

    def __init__(
        self, in_ch: int, depths: tuple[int, int, int], stride: int, dilation: int, shortcut: str
    ) -> None:
        super().__init__()
        # Pre-activation ReLUs (Xception's) everywhere but the last block, whose ReLUs follow its
        # convs. Not in place: the pre-activation must not overwrite the block's input.
        self.pre_activation = shortcut != "none"
        channels = (in_ch, *depths)
        self.convs = nn.ModuleList(
            SeparableConv(channels[i], channels[i + 1], stride if i == 2 else 1, dilation) for i in range(3)
        )
        self.relu = nn.ReLU()
        self.shortcut: nn.Module | None = None
        if shortcut == "conv":
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, depths[-1], 1, stride, bias=False), nn.BatchNorm2d(depths[-1])
            )
        elif shortcut == "sum":
            self.shortcut = nn.Identity()

    def _conv(self, index: int, x: Tensor) -> Tensor:
        if self.pre_activation:
            return self.convs[index](self.relu(x))
        return self.relu(self.convs[index](x))

    def forward_with_middle(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The block's output and its second separable conv's (TF DeepLab's decoder end point)."""
        middle = self._conv(1, self._conv(0, x))
        out = self._conv(2, middle)
        return (out if self.shortcut is None else out + self.shortcut(x)), middle

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_middle(x)[0]


class Xception65(Backbone):
    def __init__(self, output_stride: int = 32) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        # Stages: stem, entry blocks 1-3, middle flow, exit blocks 1-2. A block runs at the rate
        # reached before it (`dilations[stage - 1]`).
        strides, dilations = stride_to_dilation([2, 2, 2, 2, 1, 2, 1], output_stride)
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 3, strides[0], 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        )
        self.entry1 = XceptionBlock(64, (128, 128, 128), strides[1], dilations[0], "conv")
        self.entry2 = XceptionBlock(128, (256, 256, 256), strides[2], dilations[1], "conv")
        self.entry3 = XceptionBlock(256, (728, 728, 728), strides[3], dilations[2], "conv")
        self.middle = nn.Sequential(
            *(XceptionBlock(728, (728, 728, 728), 1, dilations[3], "sum") for _ in range(MIDDLE_BLOCKS))
        )
        self.exit1 = XceptionBlock(728, (728, 1024, 1024), strides[5], dilations[4], "conv")
        self.exit2 = XceptionBlock(1024, (1536, 1536, 2048), 1, dilations[5], "none")

        reduction_after = [strides[0]]
        for stride in strides[1:]:
            reduction_after.append(reduction_after[-1] * stride)
        # entry2's middle is computed before its strided conv, at entry1's reduction.
        self.out_channels = (256, 256, 728, 2048)
        self.reductions = (reduction_after[1], reduction_after[2], reduction_after[3], output_stride)
        self.output_stride = output_stride
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.entry1(self.stem(x))
        c2, low_level = self.entry2.forward_with_middle(x)
        c3 = self.entry3(c2)
        return [low_level, c2, c3, self.exit2(self.exit1(self.middle(c3)))]
