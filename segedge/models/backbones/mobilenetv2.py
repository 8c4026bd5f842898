"""MobileNetV2 (Sandler et al., CVPR 2018) as a dilatable backbone with torchvision's layer names.

The layers are the backbone's own children `0`..`17` (torchvision's `features.0`..`features.17`:
the stem and the 17 inverted residual blocks, each with its `conv` sequence), so a torchvision
ImageNet checkpoint loads once its `features.` prefix is stripped; the 1x1 conv to 1280 channels
(`features.18`) and the classifier are ImageNet-only and left out, as DeepLab does. Past
`output_stride`, a stage's stride becomes dilation and its first block keeps the previous rate,
as TF DeepLab's MobileNetV2 does. `width_mult` scales every layer (rounded to multiples of 8).
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import SequentialBackbone, stride_to_dilation

# (expansion t, channels c, blocks n, stride s) per stage, the paper's Table 2.
SETTINGS = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)
# The stages (indices into SETTINGS) whose last block ends reduction 4, 8, 16 and 32: the features returned.
RETURN_STAGES = (1, 2, 4, 6)


def make_divisible(value: float, divisor: int = 8) -> int:
    """The nearest multiple of `divisor`, never more than 10% below `value` (TF's rounding)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNAct(nn.Sequential):
    """torchvision's Conv2dNormActivation: conv (no bias) `0`, BN `1`, optional activation `2`."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU6,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation, groups, bias=False),
            nn.BatchNorm2d(out_ch, eps=bn_eps, momentum=bn_momentum),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, dilation: int, expansion: int) -> None:
        super().__init__()
        hidden = int(round(in_ch * expansion))
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = [ConvBNAct(in_ch, hidden)] if expansion != 1 else []
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, dilation, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(SequentialBackbone):
    """Returns the ends of the stride-4, 8, 16 and 32 stages (24, 32, 96, 320 channels at width 1)."""

    def __init__(self, output_stride: int = 32, width_mult: float = 1.0) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        # Stage 0 of stride_to_dilation is the stem; SETTINGS[i] is its stage i + 1.
        strides, dilations = stride_to_dilation([2] + [s for *_, s in SETTINGS], output_stride)
        in_ch = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvBNAct(3, in_ch, 3, stride=2)]
        return_at: list[int] = []
        out_channels, reductions, reduction = [], [], strides[0]
        for index, (t, c, n, _) in enumerate(SETTINGS):
            stage = index + 1
            out_ch = make_divisible(c * width_mult)
            for i in range(n):
                stride, dilation = (strides[stage], dilations[stage - 1]) if i == 0 else (1, dilations[stage])
                layers.append(InvertedResidual(in_ch, out_ch, stride, dilation, t))
                in_ch = out_ch
            reduction *= strides[stage]
            if index in RETURN_STAGES:
                return_at.append(len(layers) - 1)
                out_channels.append(out_ch)
                reductions.append(reduction)
        self.set_layers(layers, tuple(return_at))
        self.out_channels = tuple(out_channels)
        self.reductions = tuple(reductions)
        self.output_stride = output_stride
