"""HRNetV2 (Wang et al., TPAMI 2020) as a backbone, with the official HRNet-Semantic-Segmentation names.

Stem: two 3x3 stride-2 convs (64). Stage 1: four bottlenecks (256 out). Stages 2, 3, 4 run 2, 3,
4 parallel branches of C, 2C, 4C, 8C channels (C = 18 or 48) in 1, 4 and 3 modules of four basic
blocks per branch; each module ends with a multi-resolution fusion: a higher-resolution input
reaches a lower one by strided 3x3 convs, a lower one reaches a higher one by a 1x1 conv and a
bilinear resize to the exact size of the target (so any H, W works: strided convs round odd
sizes up, resizes follow them). A transition adds each new branch by a strided 3x3 conv.

Returns the four branches (reductions 4, 8, 16, 32); `hrnetv2_representation` concatenates them
at stride 4, HRNetV2's output. The official code resizes with its config's `align_corners`;
segedge uses False.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from ..ops import resize_to
from .base import Backbone
from .resnet import Bottleneck

STAGE_MODULES = (1, 4, 3)  # stages 2, 3, 4
BLOCKS_PER_BRANCH = 4


class BasicBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


def conv_bn(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def downsample(in_ch: int, out_ch: int, steps: int) -> nn.Sequential:
    """`steps` strided 3x3 convs; only the last changes the channels, and it has no ReLU."""
    convs = [conv_bn(in_ch, in_ch, 3, 2) for _ in range(steps - 1)]
    return nn.Sequential(*convs, conv_bn(in_ch, out_ch, 3, 2, relu=False))


class HighResolutionModule(nn.Module):
    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(ch) for _ in range(BLOCKS_PER_BRANCH))) for ch in channels
        )
        # fuse_layers[i][j] carries branch j to branch i (Identity on the diagonal).
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(self._fuse(channels, i, j) for j in range(len(channels)))
            for i in range(len(channels))
        )
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _fuse(channels: tuple[int, ...], i: int, j: int) -> nn.Module:
        if j > i:
            return conv_bn(channels[j], channels[i], 1, relu=False)
        if j < i:
            return downsample(channels[j], channels[i], i - j)
        return nn.Identity()

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for i, layers in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(cast(nn.ModuleList, layers)):
                if j > i:
                    y = y + resize_to(layer(xs[j]), xs[i].shape[-2:])
                elif j < i:
                    y = y + layer(xs[j])
            fused.append(self.relu(y))
        return fused


class Transition(nn.ModuleList):
    """Keeps (or re-channels by a 3x3 conv) the existing branches and adds one at half the resolution."""

    def __init__(self, in_channels: tuple[int, ...], out_channels: tuple[int, ...]) -> None:
        layers: list[nn.Module] = [
            nn.Identity() if c_in == c_out else conv_bn(c_in, c_out, 3)
            for c_in, c_out in zip(in_channels, out_channels)
        ]
        layers.append(nn.Sequential(conv_bn(in_channels[-1], out_channels[-1], 3, 2)))
        super().__init__(layers)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        return [layer(x) for layer, x in zip(self, xs)] + [self[-1](xs[-1])]


class HRNet(Backbone):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(Bottleneck(64, 64), *(Bottleneck(256, 64) for _ in range(3)))

        channels: tuple[int, ...] = (256,)
        for stage, num_modules in enumerate(STAGE_MODULES, start=2):
            widened = tuple(width * 2**k for k in range(stage))
            self.add_module(f"transition{stage - 1}", Transition(channels, widened))
            hr_modules = [HighResolutionModule(widened) for _ in range(num_modules)]
            self.add_module(f"stage{stage}", nn.Sequential(*hr_modules))
            channels = widened
        self.out_channels = channels
        self.reductions = (4, 8, 16, 32)
        self.output_stride = 32
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for stage in range(2, 2 + len(STAGE_MODULES)):
            xs = getattr(self, f"stage{stage}")(getattr(self, f"transition{stage - 1}")(xs))
        return xs


def hrnetv2_representation(features: list[Tensor]) -> Tensor:
    """HRNetV2's output: every branch resized to the first one's size and concatenated."""
    size = features[0].shape[-2:]
    return torch.cat([features[0], *(resize_to(f, size) for f in features[1:])], dim=1)
