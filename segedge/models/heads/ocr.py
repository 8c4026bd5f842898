"""Object-Contextual Representations (Yuan et al., ECCV 2020), with the official HRNet-OCR names.

1. `aux_head` predicts soft object regions (K class maps) from the input features.
2. `conv3x3_ocr` reduces the features to 512 channels (the pixel representations).
3. Spatial gather: each region's representation is the average of the pixel representations
   weighted by that region's map, softmax-normalised over the pixels.
4. Object-contextual attention: every pixel attends over the K regions (query from the pixels,
   key and value from the regions, 256 channels), giving each pixel its context.
5. The context and the pixel representations are concatenated, fused by a 1x1 conv to 512 and
   classified by `cls_head`.
The soft regions are the training-time auxiliary output; only the main logits are returned.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BNReLU(nn.Sequential):
    def __init__(self, channels: int) -> None:
        super().__init__(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


def conv1x1_bn_relu(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 1, bias=False), BNReLU(out_ch)]


def spatial_gather(features: Tensor, regions: Tensor) -> Tensor:
    """Region representations N x C x K x 1: pixel features averaged with softmax(region map) weights."""
    weights = torch.softmax(regions.flatten(2), dim=2)  # N x K x HW
    return torch.matmul(weights, features.flatten(2).transpose(1, 2)).transpose(1, 2).unsqueeze(3)


class ObjectAttentionBlock(nn.Module):
    def __init__(self, channels: int, key_channels: int) -> None:
        super().__init__()
        self.key_channels = key_channels
        self.f_pixel = nn.Sequential(
            *conv1x1_bn_relu(channels, key_channels), *conv1x1_bn_relu(key_channels, key_channels)
        )
        self.f_object = nn.Sequential(
            *conv1x1_bn_relu(channels, key_channels), *conv1x1_bn_relu(key_channels, key_channels)
        )
        self.f_down = nn.Sequential(*conv1x1_bn_relu(channels, key_channels))
        self.f_up = nn.Sequential(*conv1x1_bn_relu(key_channels, channels))

    def forward(self, pixels: Tensor, regions: Tensor) -> Tensor:
        query = self.f_pixel(pixels).flatten(2).transpose(1, 2)  # N x HW x key
        key = self.f_object(regions).flatten(2)  # N x key x K
        value = self.f_down(regions).flatten(2).transpose(1, 2)  # N x K x key
        attention = torch.softmax(torch.matmul(query, key) * self.key_channels**-0.5, dim=-1)
        context = torch.matmul(attention, value).transpose(1, 2)  # N x key x HW
        return self.f_up(context.reshape(context.shape[0], self.key_channels, *pixels.shape[-2:]))


class SpatialOCR(nn.Module):
    def __init__(self, channels: int, key_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.object_context_block = ObjectAttentionBlock(channels, key_channels)
        self.conv_bn_dropout = nn.Sequential(
            nn.Conv2d(2 * channels, out_channels, 1, bias=False), BNReLU(out_channels), nn.Dropout2d(dropout)
        )

    def forward(self, pixels: Tensor, regions: Tensor) -> Tensor:
        context = self.object_context_block(pixels, regions)
        return self.conv_bn_dropout(torch.cat([context, pixels], dim=1))


class OCRHead(nn.Module):
    def __init__(
        self,
        in_ch: int,
        num_classes: int,
        mid_channels: int = 512,
        key_channels: int = 256,
        dropout: float = 0.05,
    ) -> None:
        super().__init__()
        self.conv3x3_ocr = nn.Sequential(
            nn.Conv2d(in_ch, mid_channels, 3, padding=1), nn.BatchNorm2d(mid_channels), nn.ReLU(inplace=True)
        )
        self.ocr_distri_head = SpatialOCR(mid_channels, key_channels, mid_channels, dropout)
        self.cls_head = nn.Conv2d(mid_channels, num_classes, 1)
        self.aux_head = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 1),
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, num_classes, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        soft_regions = self.aux_head(x)
        pixels = self.conv3x3_ocr(x)
        regions = spatial_gather(pixels, soft_regions)
        return self.cls_head(self.ocr_distri_head(pixels, regions))
