"""SegFormer (Xie et al., SegFormer: Simple and Efficient Design for Semantic Segmentation with
Transformers, NeurIPS 2021): the Mix Transformer encoder (`backbones/mix_transformer.py`) and
the all-MLP decoder (`heads/segformer_head.py`), B0 to B5.

The decoder predicts at stride 4; `forward` resizes those logits bilinearly to the input size,
like every zoo model (Hugging Face's model returns the stride-4 logits and leaves the resize to
the caller). ADE20K's 150 classes by default; decoder width 256 for B0/B1, 768 for B2-B5.

Hugging Face checkpoints load through `SegFormer.adapt_checkpoint`, which `--weights` applies:
the keys inside the encoder and the decoder are HF's own, only the `segformer.` prefix becomes
`backbone.`, and the key names of checkpoints saved before transformers 5 (those on the Hub:
`encoder.block.i.j`, `attention.self.query`, `decode_head.linear_c`, ...) are renamed too.

One exported graph (either exporter, dynamic N/H/W) is right at every input size of 29 pixels
or more. The dynamo exporter's sample must give every reduced key/value map 2 tokens or more
(64 pixels per side always do; tested from 65 x 47): where one is 1 x 1 (a 29 x 29 sample),
torch.export specialises the graph to that size.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from torch import Tensor, nn

from .backbones.mix_transformer import mix_transformer
from .heads.segformer_head import SegFormerHead
from .ops import SegmentationModel
from .registry import Builder, register_model

PAPER = (
    "Xie et al., SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers, NeurIPS 2021"
)
ADE20K_CLASSES = 150

# transformers < 5 (and the Hub's files) -> transformers 5 names, which are ours under `backbone.`.
_LEGACY_HF_KEYS = (
    (r"^segformer\.encoder\.patch_embeddings\.(\d+)\.", r"segformer.stages.\1.patch_embeddings."),
    (r"^segformer\.encoder\.block\.(\d+)\.(\d+)\.", r"segformer.stages.\1.blocks.\2."),
    (r"^segformer\.encoder\.layer_norm\.(\d+)\.", r"segformer.stages.\1.layer_norm."),
    (r"\.attention\.self\.query\.", ".attention.q_proj."),
    (r"\.attention\.self\.key\.", ".attention.k_proj."),
    (r"\.attention\.self\.value\.", ".attention.v_proj."),
    (r"\.attention\.self\.sr\.", ".attention.sequence_reduction.sequence_reduction."),
    (r"\.attention\.self\.layer_norm\.", ".attention.sequence_reduction.layer_norm."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.mlp\.dense1\.", ".mlp.fc1."),
    (r"\.mlp\.dense2\.", ".mlp.fc2."),
    (r"\.layer_norm_1\.", ".layernorm_before."),
    (r"\.layer_norm_2\.", ".layernorm_after."),
    (r"^decode_head\.linear_c\.(\d+)\.", r"decode_head.linear_projections.\1."),
)


def hf_to_segedge_key(key: str) -> str:
    """One Hugging Face SegformerForSemanticSegmentation key (either generation) -> ours."""
    for pattern, replacement in _LEGACY_HF_KEYS:
        key = re.sub(pattern, replacement, key)
    return re.sub(r"^segformer\.", "backbone.", key)


class SegFormer(SegmentationModel):
    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__(backbone, head, head_name="decode_head")

    def adapt_checkpoint(self, state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
        """A Hugging Face SegFormer state_dict -> this model's keys (others pass unchanged)."""
        if not any(k.startswith("segformer.") for k in state):
            return state, []
        legacy = any(k.startswith("segformer.encoder.") for k in state)
        adapted = {hf_to_segedge_key(k): v for k, v in state.items()}
        generation = "transformers < 5 names (as on the Hub)" if legacy else "transformers 5 names"
        return adapted, [f"Hugging Face SegFormer checkpoint ({generation}): segformer.* loaded as backbone.*"]


def _segformer(variant: str, num_classes: int, decoder_channels: int) -> SegFormer:
    backbone = mix_transformer(variant)
    return SegFormer(backbone, SegFormerHead(backbone.out_channels, num_classes, decoder_channels))


NOTE = (
    "paper Table 1 (ADE20K, rounded to 0.1M); the layers of the authors' code and Hugging Face's "
    "(the same count as HF's SegformerForSemanticSegmentation at 150 labels); no auxiliary head"
)


def _register(reference: int) -> Callable[[Builder], Builder]:
    return register_model(
        family="segformer", paper=PAPER, size_divisor=32, reference_params=reference, reference_note=NOTE
    )


@_register(3_800_000)
def segformer_b0(*, num_classes: int = ADE20K_CLASSES) -> nn.Module:
    return _segformer("b0", num_classes, decoder_channels=256)


@_register(13_700_000)
def segformer_b1(*, num_classes: int = ADE20K_CLASSES) -> nn.Module:
    return _segformer("b1", num_classes, decoder_channels=256)


@_register(27_500_000)
def segformer_b2(*, num_classes: int = ADE20K_CLASSES) -> nn.Module:
    return _segformer("b2", num_classes, decoder_channels=768)


@_register(47_300_000)
def segformer_b3(*, num_classes: int = ADE20K_CLASSES) -> nn.Module:
    return _segformer("b3", num_classes, decoder_channels=768)


@_register(64_100_000)
def segformer_b4(*, num_classes: int = ADE20K_CLASSES) -> nn.Module:
    return _segformer("b4", num_classes, decoder_channels=768)


@_register(84_700_000)
def segformer_b5(*, num_classes: int = ADE20K_CLASSES) -> nn.Module:
    return _segformer("b5", num_classes, decoder_channels=768)
