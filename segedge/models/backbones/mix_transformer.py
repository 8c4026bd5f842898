"""Mix Transformer (MiT, SegFormer's encoder: Xie et al., NeurIPS 2021, Sec. 3.1) as a backbone.

Four stages, each an overlapping patch embedding (a strided conv: 7x7 stride 4, then 3x3
stride 2) followed by transformer blocks of efficient self-attention — keys and values come
from the map shrunk by a strided conv of reduction ratio R (8, 4, 2, 1) — and a Mix-FFN, whose
3x3 depthwise conv between the two linear layers gives the positional information (no position
embedding, so any input size works). Each stage ends with a LayerNorm and hands an
N x C x H/s x W/s map (s = 4, 8, 16, 32, sides rounded up) to the next stage and the decoder.

Module names are Hugging Face transformers' (v5: `stages.i.patch_embeddings`, `blocks.j.attention
.q_proj`, ...); `segformer.py` maps their checkpoints' `segformer.` prefix and the older v4 key
names. LayerNorms use PyTorch's default eps 1e-5, as HF does; the authors' code uses 1e-6 inside
the blocks, a difference of about 1e-6 relative.

Inputs need at least 29 pixels per side: below that the stage-1 reduction conv (8x8, stride 8)
gets a map smaller than its kernel, in the reference code as here. The Predictor pads to 32.
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import Backbone
from .drop_path import DropPath, linear_drop_rates


def to_map(tokens: Tensor, height: int, width: int) -> Tensor:
    """B x (H*W) x C tokens -> B x C x H x W, laid out contiguously.

    The plain view would be channels-last in memory, and torch.export decides how a conv and
    the views after it treat such a tensor by guarding on sizes being 1: exported where a
    reduced key/value map is one column wide, its graph held at that width only.
    """
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width).contiguous()


class OverlapPatchEmbeddings(nn.Module):
    """A conv whose patches overlap (kernel > stride, padding kernel // 2), then LayerNorm over tokens."""

    def __init__(self, in_ch: int, dim: int, patch_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, patch_size, stride=stride, padding=patch_size // 2)
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        height, width = x.shape[2], x.shape[3]
        return self.layer_norm(x.flatten(2).transpose(1, 2)), height, width


class SequenceReduction(nn.Module):
    """Shrinks the key/value sequence R*R times: a conv with kernel = stride = R, then LayerNorm."""

    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        self.sequence_reduction = nn.Conv2d(dim, dim, ratio, stride=ratio)
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor, height: int, width: int) -> Tensor:
        reduced = self.sequence_reduction(to_map(tokens, height, width))
        return self.layer_norm(reduced.flatten(2).transpose(1, 2))


class EfficientSelfAttention(nn.Module):
    """Multi-head attention of every token over the reduced sequence: O(N^2 / R^2) instead of O(N^2)."""

    def __init__(self, dim: int, num_heads: int, reduction_ratio: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.o_proj = nn.Linear(dim, dim)
        self.sequence_reduction = SequenceReduction(dim, reduction_ratio) if reduction_ratio > 1 else None

    def heads(self, x: Tensor) -> Tensor:
        """B x L x C -> B x heads x L x C/heads."""
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)

    def forward(self, tokens: Tensor, height: int, width: int) -> Tensor:
        context = tokens if self.sequence_reduction is None else self.sequence_reduction(tokens, height, width)
        q, k, v = self.heads(self.q_proj(tokens)), self.heads(self.k_proj(context)), self.heads(self.v_proj(context))
        attention = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = (attention @ v).transpose(1, 2).reshape(tokens.shape)
        return self.o_proj(out)


class DepthwiseConv(nn.Module):
    """The Mix-FFN's 3x3 depthwise conv, applied to the tokens laid out as their map."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, tokens: Tensor, height: int, width: int) -> Tensor:
        return self.dwconv(to_map(tokens, height, width)).flatten(2).transpose(1, 2)


class MixFFN(nn.Module):
    """fc1 -> 3x3 depthwise conv -> GELU -> fc2 (the paper's Eq. 3)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DepthwiseConv(hidden)
        self.activation = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, tokens: Tensor, height: int, width: int) -> Tensor:
        return self.fc2(self.activation(self.dwconv(self.fc1(tokens), height, width)))


class MixTransformerBlock(nn.Module):
    """Pre-norm residual block: + attention(LN(x)), then + Mix-FFN(LN(x))."""

    def __init__(self, dim: int, num_heads: int, reduction_ratio: int, mlp_ratio: int, drop_path: float) -> None:
        super().__init__()
        self.layernorm_before = nn.LayerNorm(dim)
        self.attention = EfficientSelfAttention(dim, num_heads, reduction_ratio)
        self.drop_path = DropPath(drop_path)
        self.layernorm_after = nn.LayerNorm(dim)
        self.mlp = MixFFN(dim, dim * mlp_ratio)

    def forward(self, tokens: Tensor, height: int, width: int) -> Tensor:
        tokens = tokens + self.drop_path(self.attention(self.layernorm_before(tokens), height, width))
        return tokens + self.drop_path(self.mlp(self.layernorm_after(tokens), height, width))


class MixTransformerStage(nn.Module):
    def __init__(
        self, in_ch: int, dim: int, patch_size: int, stride: int, blocks: list[MixTransformerBlock]
    ) -> None:
        super().__init__()
        self.patch_embeddings = OverlapPatchEmbeddings(in_ch, dim, patch_size, stride)
        self.blocks = nn.ModuleList(blocks)
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        tokens, height, width = self.patch_embeddings(x)
        for block in self.blocks:
            tokens = block(tokens, height, width)
        return to_map(self.layer_norm(tokens), height, width)


class MixTransformer(Backbone):
    """MiT-B0..B5: the four stages' maps at strides 4, 8, 16, 32."""

    def __init__(
        self,
        dims: tuple[int, int, int, int],
        depths: tuple[int, int, int, int],
        num_heads: tuple[int, int, int, int] = (1, 2, 5, 8),
        reduction_ratios: tuple[int, int, int, int] = (8, 4, 2, 1),
        mlp_ratio: int = 4,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        rates = iter(linear_drop_rates(drop_path_rate, depths))
        stages = []
        for i, (dim, depth, heads, ratio) in enumerate(zip(dims, depths, num_heads, reduction_ratios)):
            blocks = [MixTransformerBlock(dim, heads, ratio, mlp_ratio, next(rates)) for _ in range(depth)]
            patch, stride = (7, 4) if i == 0 else (3, 2)
            stages.append(MixTransformerStage(3 if i == 0 else dims[i - 1], dim, patch, stride, blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(dims)
        self.reductions = (4, 8, 16, 32)
        self.output_stride = 32
        for m in self.modules():
            if isinstance(m, nn.Linear):  # the authors' init (HF's initializer_range 0.02)
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


_WIDE = (64, 128, 320, 512)  # B1-B5 share the widths; they differ in depth
MIT_CONFIGS: dict[str, tuple[tuple[int, int, int, int], tuple[int, int, int, int]]] = {
    "b0": ((32, 64, 160, 256), (2, 2, 2, 2)),
    "b1": (_WIDE, (2, 2, 2, 2)),
    "b2": (_WIDE, (3, 4, 6, 3)),
    "b3": (_WIDE, (3, 4, 18, 3)),
    "b4": (_WIDE, (3, 8, 27, 3)),
    "b5": (_WIDE, (3, 6, 40, 3)),
}


def mix_transformer(variant: str, drop_path_rate: float = 0.1) -> MixTransformer:
    dims, depths = MIT_CONFIGS[variant]
    return MixTransformer(dims, depths, drop_path_rate=drop_path_rate)
