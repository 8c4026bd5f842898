"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), Fig. 1 of the paper.

Four levels down (two 3x3 convs + ReLU, then 2x2 max-pool), a bottom level, four levels up
(2x2 up-convolution halving the channels, concatenation with the encoder's map of that level,
two 3x3 convs + ReLU), a final 1x1 conv. No batch norm, as in the paper. Channels
64-128-256-512-1024 by default (`base_channels` scales them); 3 input channels (the paper's
microscopy images had 1), 2 classes as in the paper.

padding="valid" (the paper): unpadded convs, each skip centre-cropped to the upsampled map
("copy and crop"). The output is the valid region only, 92 pixels smaller on every border:
572 x 572 in -> 388 x 388 out. With a bottom map of b pixels, the input is 16b + 124 and the
output 16b - 60, so the valid inputs are

    H = 188 + 16k (k = 0, 1, 2, ...), output H - 184 = 4 + 16k   (likewise W)

i.e. (H + 4) % 16 == 0 and H >= 188. Every pool then halves an even size and every crop is
exact. To segment S pixels, pad the image by 92 on each side (the paper mirrors) plus e =
(4 - S) mod 16 more at the end: the input is S + 184 + e = `unet_valid_input_size(S + 184)`,
and the first S output pixels are the image's. Eager `forward` refuses other sizes with a
ValueError; an exported graph has no such check and must be fed valid sizes.

padding="same": 3x3 convs pad by 1, ceil-mode pools, and each upsampled map is cropped
top-left to its skip, so the output is the input's size for any H, W.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from .align import center_crop, crop_to
from .registry import register_model

PAPER = "Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image Segmentation, MICCAI 2015"
DEPTH = 4
VALID_MARGIN = 92  # 2 px per 3x3 conv on the way up and down, at each level's scale
SMALLEST_VALID = 188
VALID_STEP = 2**DEPTH

Padding = Literal["valid", "same"]


def unet_valid_input_size(min_size: int) -> int:
    """The smallest side >= `min_size` that valid-mode U-Net accepts (188 + 16k); output is 184 less."""
    k = max(0, -(-(min_size - SMALLEST_VALID) // VALID_STEP))
    return SMALLEST_VALID + VALID_STEP * k


class DoubleConv(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, padding: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=padding),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=padding),
            nn.ReLU(inplace=True),
        )


class UpBlock(nn.Module):
    """2x2 up-convolution, concatenation with the skip, two 3x3 convs."""

    def __init__(self, in_ch: int, out_ch: int, padding: int) -> None:
        super().__init__()
        self.crop_skip = padding == 0
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        self.convs = DoubleConv(2 * out_ch, out_ch, padding)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        up = self.up(x)
        if self.crop_skip:  # valid: the skip lost fewer border pixels than the deeper path
            skip = center_crop(skip, up)
        else:  # same: a ceil-mode pool left the upsampled map up to one pixel larger
            up = crop_to(up, skip)
        return self.convs(torch.cat([skip, up], dim=1))


class UNet(nn.Module):
    def __init__(self, num_classes: int, base_channels: int = 64, padding: Padding = "valid") -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        if base_channels < 1:
            raise ValueError(f"base_channels must be positive, got {base_channels}")
        self.padding = padding
        pad = 0 if padding == "valid" else 1
        widths = [base_channels * 2**level for level in range(DEPTH + 1)]
        self.encoder = nn.ModuleList(
            DoubleConv(in_ch, out_ch, pad) for in_ch, out_ch in zip([3, *widths[:-2]], widths[:-1])
        )
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.bottleneck = DoubleConv(widths[-2], widths[-1], pad)
        self.decoder = nn.ModuleList(
            UpBlock(widths[level + 1], widths[level], pad) for level in reversed(range(DEPTH))
        )
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)
        for m in self.modules():  # the paper's Gaussian init, std sqrt(2 / fan-in)
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.padding == "valid":
            _check_valid_input(x)
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for block, skip in zip(self.decoder, reversed(skips)):
            x = block(x, skip)
        return self.classifier(x)


def _check_valid_input(x: Tensor) -> None:
    # Skipped while exporting or tracing: a Python check on a symbolic size would fix the size.
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if (h, w) != (unet_valid_input_size(h), unet_valid_input_size(w)):
        raise ValueError(
            f"valid-mode U-Net takes sides of 188 + 16k, got {h} x {w}; pad to "
            f"{unet_valid_input_size(h)} x {unet_valid_input_size(w)} (output {VALID_MARGIN} px "
            f"smaller on each border) or build with padding='same'"
        )


def _unet_margin(kwargs: dict[str, Any]) -> int:
    return VALID_MARGIN if kwargs["padding"] == "valid" else 0


@register_model(
    family="unet",
    paper=PAPER,
    input_size=(572, 572),
    size_divisor=VALID_STEP,
    valid_margin=_unet_margin,
    reference_params=31_000_000,
    reference_note="~31.0M as usually quoted for Fig. 1 (the paper states none); ours with 3 input "
    "channels, 2 classes: 31,031,810",
)
def unet(*, num_classes: int = 2, base_channels: int = 64, padding: Padding = "valid") -> nn.Module:
    return UNet(num_classes, base_channels, padding)
