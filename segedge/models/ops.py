"""Small building blocks shared by the zoo, written so that they export to ONNX faithfully."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def resize_to(x: Tensor, size: tuple[int, int] | list[int] | tuple) -> Tensor:
    """Bilinear resize to an explicit size (never a scale factor: parity must hold at any size)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, dilation: int = 1) -> None:
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class SegmentationModel(nn.Module):
    """backbone -> head -> bilinear resize to the input size (torchvision's simple model).

    `head` takes the backbone's feature list and returns logits at some reduction; the resize
    makes `forward` return N x C x H x W for any H and W. `head_name` is the attribute the head
    lives under: torchvision calls it `classifier` (DeepLab v3, FCN), so passing that name lets
    torchvision checkpoints load with their keys as they are.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, head_name: str = "head") -> None:
        super().__init__()
        self.backbone = backbone
        self.head_name = head_name
        self.add_module(head_name, head)

    def forward(self, x: Tensor) -> Tensor:
        head = getattr(self, self.head_name)
        return resize_to(head(self.backbone(x)), x.shape[-2:])
