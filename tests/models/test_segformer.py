"""SegFormer: B0 through the whole model test base, B1-B5 with a light check, and the mapping
of Hugging Face's key names (both generations) without transformers installed."""

from __future__ import annotations

import pytest
import torch

from segedge.models import build_model, get_spec
from segedge.models.segformer import hf_to_segedge_key

from .base import ModelTestBase

# Multiples of neither 32 nor 28; 29 x 61 is near the smallest side the reduction convs allow (29).
SIZES = ((65, 47), (97, 129), (225, 289), (29, 61))  # batches 1, 2, 1, 2


class TestSegFormerB0(ModelTestBase):
    name = "segformer_b0"
    sizes = SIZES

    @pytest.mark.slow
    @pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
    def test_export_dynamic_parity(self, model: torch.nn.Module, exporter: str, tmp_path) -> None:
        super().test_export_dynamic_parity(model, exporter, tmp_path)


def params(name: str) -> int:
    with torch.device("meta"):
        model = build_model(name)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("variant", ["b0", "b1", "b2", "b3", "b4", "b5"])
def test_params_match_the_paper(variant: str) -> None:
    """Table 1 of the paper gives 3.8, 13.7, 27.5, 47.3, 64.1 and 84.7M at ADE20K's 150 classes."""
    spec = get_spec(f"segformer_{variant}")
    assert spec.reference_params is not None
    assert round(params(spec.name), -5) == spec.reference_params
    assert spec.num_classes == 150 and spec.family == "segformer" and spec.size_divisor == 32


@pytest.mark.parametrize(("variant", "depths", "decoder"), [
    ("b1", (2, 2, 2, 2), 256), ("b2", (3, 4, 6, 3), 768), ("b3", (3, 4, 18, 3), 768),
    ("b4", (3, 8, 27, 3), 768), ("b5", (3, 6, 40, 3), 768),
])
def test_larger_variants_forward_at_an_odd_size(variant: str, depths: tuple[int, ...], decoder: int) -> None:
    torch.manual_seed(0)
    model = build_model(f"segformer_{variant}", num_classes=3)
    assert tuple(len(stage.blocks) for stage in model.backbone.stages) == depths
    assert model.decode_head.linear_fuse.out_channels == decoder
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, 65, 47))
        out = model(torch.randn(2, 3, 65, 47))
    assert [f.shape[1] for f in features] == [64, 128, 320, 512]
    assert [tuple(f.shape[-2:]) for f in features] == [(17, 12), (9, 6), (5, 3), (3, 2)]  # sides rounded up
    assert out.shape == (2, 3, 65, 47) and torch.isfinite(out).all()


@pytest.mark.parametrize(("hf", "ours"), [
    # transformers 5 (what a SegformerForSemanticSegmentation's state_dict() holds now)
    ("segformer.stages.2.blocks.5.attention.q_proj.weight", "backbone.stages.2.blocks.5.attention.q_proj.weight"),
    ("decode_head.linear_projections.3.proj.bias", "decode_head.linear_projections.3.proj.bias"),
    # transformers < 5, as in the Hub's files
    ("segformer.encoder.patch_embeddings.0.proj.weight", "backbone.stages.0.patch_embeddings.proj.weight"),
    ("segformer.encoder.block.1.0.attention.self.sr.weight",
     "backbone.stages.1.blocks.0.attention.sequence_reduction.sequence_reduction.weight"),
    ("segformer.encoder.block.1.0.attention.self.layer_norm.bias",
     "backbone.stages.1.blocks.0.attention.sequence_reduction.layer_norm.bias"),
    ("segformer.encoder.block.3.1.attention.output.dense.weight", "backbone.stages.3.blocks.1.attention.o_proj.weight"),
    ("segformer.encoder.block.0.1.layer_norm_2.weight", "backbone.stages.0.blocks.1.layernorm_after.weight"),
    ("segformer.encoder.block.0.1.mlp.dense1.weight", "backbone.stages.0.blocks.1.mlp.fc1.weight"),
    ("segformer.encoder.block.0.1.mlp.dwconv.dwconv.bias", "backbone.stages.0.blocks.1.mlp.dwconv.dwconv.bias"),
    ("segformer.encoder.layer_norm.3.weight", "backbone.stages.3.layer_norm.weight"),
    ("decode_head.linear_c.2.proj.weight", "decode_head.linear_projections.2.proj.weight"),
])
def test_hugging_face_keys_map_to_ours(hf: str, ours: str) -> None:
    assert hf_to_segedge_key(hf) == ours


def test_every_mapped_key_exists_in_the_model() -> None:
    with torch.device("meta"):
        model = build_model("segformer_b0")
    keys = set(model.state_dict())
    assert "backbone.stages.0.blocks.0.attention.sequence_reduction.sequence_reduction.weight" in keys
    assert "backbone.stages.3.blocks.0.attention.sequence_reduction" not in {k.rsplit(".", 1)[0] for k in keys}  # R = 1
    assert {k.split(".")[0] for k in keys} == {"backbone", "decode_head"}


def test_adapt_checkpoint_leaves_segedge_keys_alone() -> None:
    model = build_model("segformer_b0")
    state = model.state_dict()
    adapted, notes = model.adapt_checkpoint(state)
    assert adapted is state and notes == []
