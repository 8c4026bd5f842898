"""Aligning feature maps of different sizes in ops that export with dynamic H and W.

Every size here is read from tensor shapes at run time (sizes, never scale factors, and no
Python-level branching on them), so one exported graph is right for every input size.

Maps made by ceil-mode pooling cover the input from its top-left corner: cell j of a stride-s
map spans input pixels [s*j, s*j + s), the last cell possibly hanging over the border. Such a
map upsampled by exactly s and cropped top-left lines up with the input pixel for pixel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .ops import resize_to


def crop_to(x: Tensor, like: Tensor) -> Tensor:
    """The top-left part of `x` with the spatial size of `like` (x must be at least as large)."""
    return x[..., : like.shape[-2], : like.shape[-1]]


def center_crop(x: Tensor, like: Tensor) -> Tensor:
    """The centre part of `x` with the spatial size of `like` (U-Net's crop of its skips)."""
    h, w = like.shape[-2], like.shape[-1]
    top = (x.shape[-2] - h) // 2
    left = (x.shape[-1] - w) // 2
    return x[..., top : top + h, left : left + w]


def upsample_and_crop(x: Tensor, stride: int, like: Tensor) -> Tensor:
    """Bilinear upsampling of a stride-`stride` map by exactly `stride`, cropped to `like`'s size."""
    full = resize_to(x, (x.shape[-2] * stride, x.shape[-1] * stride))
    return crop_to(full, like)


def bilinear_upsampling(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A learnable per-channel upsampling by `factor`, initialised to bilinear interpolation.

    Kernel 2*factor, padding factor/2: output pixel o samples input position (o + 0.5)/factor
    - 0.5, the same grid as `resize_to` (align_corners=False); only the outermost factor/2
    pixels differ, where the kernel runs off the map.
    """
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        up.weight.zero_()
        kernel = bilinear_kernel(2 * factor)
        for c in range(channels):
            up.weight[c, c] = kernel
    return up


def bilinear_kernel(size: int) -> Tensor:
    """The 2-D bilinear interpolation kernel of an even `size` (FCN's `upsample_filt`)."""
    factor = size // 2
    center = factor - 0.5
    ramp = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    return ramp[:, None] * ramp[None, :]
