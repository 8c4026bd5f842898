"""MobileNetV3-Large (Howard et al., ICCV 2019) as a dilatable backbone with torchvision's layer names.

The layers are the backbone's own children `0`..`16` (torchvision's `features.0`..`features.16`:
stem, 15 inverted residual blocks with their `block` sequence and SE `fc1`/`fc2`, last 1x1 conv
to 960), because torchvision's segmentation models wrap `features` in an IntermediateLayerGetter
that flattens it: a `deeplabv3_mobilenet_v3_large` / `lraspp_mobilenet_v3_large` state_dict's
`backbone.N...` keys load as they are (an ImageNet checkpoint after stripping `features.`).

Features returned are torchvision's stage outputs: the strided blocks C1, C2, C3 (indices 2, 4, 7:
the first block at each new reduction, not the stage's last) and the last conv (16). Past
`output_stride` the strided block itself turns stride into dilation, as torchvision's
`dilated=True` does (output stride 16: blocks 13-15 at rate 2).
"""

from __future__ import annotations

from typing import TypedDict

from typing import NamedTuple

from torch import Tensor, nn

from .base import SequentialBackbone, stride_to_dilation
from .mobilenetv2 import ConvBNAct, make_divisible

class _BatchNorm(TypedDict):
    bn_eps: float
    bn_momentum: float


BN: _BatchNorm = {"bn_eps": 1e-3, "bn_momentum": 0.01}  # torchvision's (TF's) MobileNetV3 batch norm


class BlockConfig(NamedTuple):
    in_ch: int
    kernel: int
    expanded: int
    out_ch: int
    use_se: bool
    hardswish: bool
    stride: int


# The paper's Table 1 (MobileNetV3-Large).
LARGE = (
    BlockConfig(16, 3, 16, 16, False, False, 1),
    BlockConfig(16, 3, 64, 24, False, False, 2),  # C1
    BlockConfig(24, 3, 72, 24, False, False, 1),
    BlockConfig(24, 5, 72, 40, True, False, 2),  # C2
    BlockConfig(40, 5, 120, 40, True, False, 1),
    BlockConfig(40, 5, 120, 40, True, False, 1),
    BlockConfig(40, 3, 240, 80, False, True, 2),  # C3
    BlockConfig(80, 3, 200, 80, False, True, 1),
    BlockConfig(80, 3, 184, 80, False, True, 1),
    BlockConfig(80, 3, 184, 80, False, True, 1),
    BlockConfig(80, 3, 480, 112, True, True, 1),
    BlockConfig(112, 3, 672, 112, True, True, 1),
    BlockConfig(112, 5, 672, 160, True, True, 2),  # C4
    BlockConfig(160, 5, 960, 160, True, True, 1),
    BlockConfig(160, 5, 960, 160, True, True, 1),
)
LAST_CHANNELS = 960


class SqueezeExcitation(nn.Module):
    """Global pool, fc1 (ReLU), fc2 (hard sigmoid), rescale the channels."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.activation = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return x * self.scale_activation(scale)


class InvertedResidual(nn.Module):
    def __init__(self, cfg: BlockConfig, stride: int, dilation: int) -> None:
        super().__init__()
        act = nn.Hardswish if cfg.hardswish else nn.ReLU
        self.use_residual = cfg.stride == 1 and cfg.in_ch == cfg.out_ch
        layers: list[nn.Module] = []
        if cfg.expanded != cfg.in_ch:
            layers.append(ConvBNAct(cfg.in_ch, cfg.expanded, activation=act, **BN))
        layers.append(
            ConvBNAct(cfg.expanded, cfg.expanded, cfg.kernel, stride, dilation, cfg.expanded, act, **BN)
        )
        if cfg.use_se:
            layers.append(SqueezeExcitation(cfg.expanded, make_divisible(cfg.expanded // 4)))
        layers.append(ConvBNAct(cfg.expanded, cfg.out_ch, activation=None, **BN))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


class MobileNetV3Large(SequentialBackbone):
    """Returns C1, C2, C3 and the last conv: 24, 40, 80, 960 channels at reductions 4, 8, 16, OS."""

    def __init__(self, output_stride: int = 32) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        # The stem and C1..C4 each halve the resolution.
        strides, dilations = stride_to_dilation([2, 2, 2, 2, 2], output_stride)
        layers: list[nn.Module] = [ConvBNAct(3, LARGE[0].in_ch, 3, 2, activation=nn.Hardswish, **BN)]
        stage = 0
        for cfg in LARGE:
            stride = 1
            if cfg.stride == 2:
                stage += 1
                stride = strides[stage]
            layers.append(InvertedResidual(cfg, stride, dilations[stage]))
        layers.append(ConvBNAct(LARGE[-1].out_ch, LAST_CHANNELS, activation=nn.Hardswish, **BN))
        self.set_layers(layers, (2, 4, 7, len(layers) - 1))
        self.out_channels = (24, 40, 80, LAST_CHANNELS)
        self.reductions = (4, 8, min(16, output_stride), output_stride)
        self.output_stride = output_stride
