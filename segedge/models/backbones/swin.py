"""Swin Transformer (Liu et al., ICCV 2021) as a four-level backbone for dense prediction.

4x4 patches are embedded, then four stages of Swin blocks run window attention (7x7 windows,
relative position bias) that alternates between regular and shifted windows (shift 3, with the
attention mask that keeps wrapped-round regions apart); patch merging halves the resolution
and doubles the channels between stages. Each stage's output gets a LayerNorm and is returned
channels-first at strides 4, 8, 16, 32, as the Swin segmentation code does for UperNet.

Layer names are torchvision's (`features.0` the patch embedding, `features.1/3/5/7` the stages,
`features.2/4/6` the mergings), so torchvision's `swin_t/s/b` ImageNet state_dicts load through
`adapt_checkpoint` (which only deals with the classifier and the output norms).

At every size this computes what torchvision computes: the map is padded to a multiple of the
window, a side holding one window is not shifted (`backbones/swin_windows.py` does both from
the shape inside the graph), and the patch embedding drops the last H mod 4 rows as
torchvision's stride-4 conv does. The Swin segmentation code and mmseg differ at small sizes:
they pad the input to a multiple of 4 and shift even a side that holds a single window, so
their outputs differ from these wherever a stage is 7 tokens or less on a side (at the last
stage: inputs of 227 pixels or fewer on that side) or H, W are not multiples of 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Backbone
from .drop_path import DropPath, linear_drop_rates
from .swin_windows import (
    cyclic_shift,
    effective_shift,
    merge,
    partition,
    shifted_window_mask,
    windows_along,
)


class ChannelsLast(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, 2, 3, 1)


class PatchEmbedding(nn.Sequential):
    """Non-overlapping patches, each embedded linearly (a conv with stride = kernel), then LayerNorm.
    Children at torchvision's indices: 0 conv, 1 to channels-last, 2 norm."""

    def __init__(self, embed_dim: int, patch_size: int = 4) -> None:
        super().__init__(
            nn.Conv2d(3, embed_dim, patch_size, stride=patch_size), ChannelsLast(), nn.LayerNorm(embed_dim)
        )


def relative_position_index(window: int) -> Tensor:
    """For each pair of tokens (i, j) of a window, flattened: the row of the bias table that
    holds their offset, (dy + w - 1) * (2w - 1) + (dx + w - 1). Shape (w*w * w*w,)."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # 2 x N
    offsets = coords[:, :, None] - coords[:, None, :] + (window - 1)  # 2 x N x N, from 0
    return (offsets[0] * (2 * window - 1) + offsets[1]).flatten()


class ShiftedWindowAttention(nn.Module):
    """Multi-head self-attention inside each window of a B x H x W x C map (W-MSA), or inside
    the windows of the map shifted by `shift_size` with the mask across wrapped regions (SW-MSA)."""

    relative_position_index: Tensor

    def __init__(self, dim: int, num_heads: int, window_size: int = 7, shift_size: int = 0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window_size))

    def relative_position_bias(self) -> Tensor:
        """1 x heads x N x N, looked up from the learned table (a constant of the graph)."""
        tokens = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index]
        return bias.view(tokens, tokens, -1).permute(2, 0, 1).unsqueeze(0)

    def forward(self, x: Tensor) -> Tensor:
        _, height, width, _ = x.shape
        window = self.window_size
        rows, cols = windows_along(height, window), windows_along(width, window)
        x = F.pad(x, (0, 0, 0, cols * window - width, 0, rows * window - height))
        mask = None
        if self.shift_size:  # a property of the block (odd blocks shift), not of the input size
            shift_h, shift_w = effective_shift(rows, self.shift_size), effective_shift(cols, self.shift_size)
            x = cyclic_shift(cyclic_shift(x, shift_h, dim=1), shift_w, dim=2)
            mask = shifted_window_mask(rows, cols, window, shift_h, shift_w, x.device)
        x = merge(self.attend(partition(x, window), mask), window, rows, cols)
        if self.shift_size:
            padded_h, padded_w = rows * window, cols * window
            x = cyclic_shift(cyclic_shift(x, padded_h - shift_h, dim=1), padded_w - shift_w, dim=2)
        return x[:, :height, :width]

    def attend(self, windows: Tensor, mask: Tensor | None) -> Tensor:
        """Attention within each window: (B*windows) x N x C -> the same shape."""
        n, tokens, dim = windows.shape
        qkv = self.qkv(windows).reshape(n, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B*windows) x heads x N x head_dim
        logits = (q * self.scale) @ k.transpose(-2, -1) + self.relative_position_bias()
        if mask is not None:  # mask: windows x N x N, the same for every image of the batch
            per_image = logits.view(-1, mask.shape[0], self.num_heads, tokens, tokens) + mask[None, :, None]
            logits = per_image.view(-1, self.num_heads, tokens, tokens)
        out = logits.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(n, tokens, dim))


class SwinMLP(nn.Sequential):
    """Linear -> GELU -> Linear, laid out as torchvision's `MLP` (dropouts at 2 and 4, p=0 in
    every Swin config) so that the keys `mlp.0` and `mlp.3` load."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )


class SwinBlock(nn.Module):
    """Pre-norm residual block: x + attn(norm1(x)), then + mlp(norm2(x))."""

    def __init__(
        self, dim: int, num_heads: int, window_size: int, shift_size: int, mlp_ratio: float, drop_path: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftedWindowAttention(dim, num_heads, window_size, shift_size)
        self.stochastic_depth = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = SwinMLP(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Concatenates each 2x2 neighbourhood (4C channels; odd sides padded with zeros), LayerNorm,
    then a linear reduction to 2C: B x H x W x C -> B x ceil(H/2) x ceil(W/2) x 2C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[1], x.shape[2]
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        # torchvision's order: (even row, even col), (odd, even), (even, odd), (odd, odd)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinTransformer(Backbone):
    """Returns each stage's LayerNormed output, N x C_i x H/s x W/s for s = 4, 8, 16, 32."""

    def __init__(
        self,
        embed_dim: int,
        depths: tuple[int, ...],
        num_heads: tuple[int, ...],
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.3,
    ) -> None:
        super().__init__()
        rates = iter(linear_drop_rates(drop_path_rate, depths))
        layers: list[nn.Module] = [PatchEmbedding(embed_dim)]
        dims = [embed_dim * 2**i for i in range(len(depths))]
        for i, (dim, depth, heads) in enumerate(zip(dims, depths, num_heads)):
            blocks = [
                SwinBlock(dim, heads, window_size, 0 if j % 2 == 0 else window_size // 2, mlp_ratio, next(rates))
                for j in range(depth)
            ]
            layers.append(nn.Sequential(*blocks))
            if i < len(depths) - 1:
                layers.append(PatchMerging(dim))
        self.features = nn.Sequential(*layers)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for dim in dims)
        self.out_channels = tuple(dims)
        self.reductions = (4, 8, 16, 32)
        self.output_stride = 32
        for m in self.modules():
            if isinstance(m, nn.Linear):  # torchvision's and the paper's init
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        stages = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index % 2 == 1:  # stages sit at 1, 3, 5, 7, between the embedding and the mergings
                stages.append(x)
        return [norm(f).permute(0, 3, 1, 2).contiguous() for norm, f in zip(self.norms, stages)]

    def adapt_checkpoint(self, state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
        """A torchvision ImageNet `SwinTransformer` state_dict -> this backbone's keys.

        `features.*` load as they are. The classifier (`head.*`) is dropped. torchvision's final
        LayerNorm (`norm.*`) sits exactly where `norms.3` does, after the last stage, so it
        becomes `norms.3`; the other stages' output norms do not exist in a classification
        model and start as the identity affine (weight 1, bias 0), as they would from init.
        A state_dict that already has this backbone's keys is returned unchanged.
        """
        if "norms.0.weight" in state or "head.weight" not in state:
            return state, []
        adapted = {k: v for k, v in state.items() if not k.startswith(("head.", "norm."))}
        last = len(self.norms) - 1
        adapted[f"norms.{last}.weight"] = state["norm.weight"]
        adapted[f"norms.{last}.bias"] = state["norm.bias"]
        for i, dim in enumerate(self.out_channels[:last]):
            adapted[f"norms.{i}.weight"] = torch.ones(dim)
            adapted[f"norms.{i}.bias"] = torch.zeros(dim)
        notes = [
            "torchvision ImageNet Swin checkpoint: classifier head.* ignored (not part of the backbone); "
            f"its final norm.* loaded as norms.{last}; norms.0-{last - 1} (segmentation only) set to weight 1, bias 0"
        ]
        return adapted, notes


def swin_t(drop_path_rate: float = 0.3) -> SwinTransformer:
    return SwinTransformer(96, (2, 2, 6, 2), (3, 6, 12, 24), drop_path_rate=drop_path_rate)


def swin_s(drop_path_rate: float = 0.3) -> SwinTransformer:
    return SwinTransformer(96, (2, 2, 18, 2), (3, 6, 12, 24), drop_path_rate=drop_path_rate)


def swin_b(drop_path_rate: float = 0.3) -> SwinTransformer:
    return SwinTransformer(128, (2, 2, 18, 2), (4, 8, 16, 32), drop_path_rate=drop_path_rate)
