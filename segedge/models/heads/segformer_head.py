"""SegFormer's all-MLP decoder (Xie et al., NeurIPS 2021, Sec. 3.2, Eq. 4).

Each encoder level is projected to one width by a linear layer (an MLP over channels, applied
to every pixel), upsampled bilinearly to the stride-4 level's size and concatenated deepest
first; a 1x1 conv + BN + ReLU fuses them and a 1x1 conv predicts the classes at stride 4.
Names are Hugging Face's `SegformerDecodeHead` (`linear_projections`, `linear_fuse`,
`batch_norm`, `classifier`), so its checkpoints' `decode_head.*` keys load as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..ops import resize_to


class LevelProjection(nn.Module):
    """A linear layer over the channels of every pixel: B x C x H x W -> B x D x H x W."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_ch, out_ch)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[2], x.shape[3]
        tokens = self.proj(x.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, height, width)


class SegFormerHead(nn.Module):
    def __init__(
        self, in_channels: Sequence[int], num_classes: int, channels: int = 256, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.linear_projections = nn.ModuleList(LevelProjection(c, channels) for c in in_channels)
        self.linear_fuse = nn.Conv2d(len(in_channels) * channels, channels, 1, bias=False)
        self.batch_norm = nn.BatchNorm2d(channels)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        size = features[0].shape[-2:]
        levels = [project(f) for project, f in zip(self.linear_projections, features)]
        levels = [levels[0], *(resize_to(level, size) for level in levels[1:])]
        fused = self.linear_fuse(torch.cat(levels[::-1], dim=1))  # deepest first, as the authors' code
        return self.classifier(self.dropout(self.activation(self.batch_norm(fused))))
