"""UperNet + Swin: Swin-T through the whole model test base, Swin-S/B with a light check.

The sizes are multiples of neither 32 nor the window's 28 pixels, and at each of them some
stage holds a single window on one side (65 x 47: stages 2-4, stages 3-4 on both sides;
225 x 289: the last stage is 7 x 9 tokens; 13 x 250: every stage's height). The base exports at
the first and checks the others, so a shift or mask baked in at the export size breaks parity
(a Python `if` for the shift: 98.7-99.3% agreement), and so does a graph that torch.export
specialised because a stage was one window there (torchvision's window partition: the graph
then held for batch 1 only). The extra test exports the other way round.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from exporters.torch_to_onnx import export_onnx
from segedge.models import build_model, get_spec
from segedge.models.swin_upernet import aux_head_params

from .base import MAX_ABS_OVER_RANGE, MIN_AGREEMENT, ModelTestBase, onnx_logits, torch_logits

SIZES = ((65, 47), (97, 129), (225, 289), (13, 250))  # batches 1, 2, 1, 2


class TestUperNetSwinT(ModelTestBase):
    name = "upernet_swin_t"
    sizes = SIZES

    @pytest.mark.slow
    @pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
    def test_export_dynamic_parity(self, model: torch.nn.Module, exporter: str, tmp_path) -> None:
        super().test_export_dynamic_parity(model, exporter, tmp_path)

    def test_export_at_a_large_size_holds_at_small_ones(self, model: torch.nn.Module, tmp_path) -> None:
        """The other direction: exported where every stage holds two windows or more each way (all
        shifted blocks shift), run where some are one window (not shifted). TorchScript: it bakes a
        Python branch just as dynamo does."""
        path = tmp_path / "large.onnx"
        export_onnx(model, path, input_size=(300, 232), exporter="torchscript")
        for i, (h, w) in enumerate([(65, 47), (13, 250)]):
            x = self.sample(1, h, w, seed=i)
            ref, got = torch_logits(model, x), onnx_logits(path, x)
            assert np.abs(ref - got).max() <= MAX_ABS_OVER_RANGE * (ref.max() - ref.min()), (h, w)
            assert (ref.argmax(1) == got.argmax(1)).mean() >= MIN_AGREEMENT, (h, w)


def params(name: str) -> int:
    with torch.device("meta"):
        model = build_model(name)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "stage3_channels"), [
    ("upernet_swin_t", 384), ("upernet_swin_s", 384), ("upernet_swin_b", 512)
])
def test_params_match_the_paper_once_the_aux_head_is_added(name: str, stage3_channels: int) -> None:
    spec = get_spec(name)
    ours = params(name)
    with_aux = ours + aux_head_params(stage3_channels)
    # The paper's count (rounded to 1M) includes the auxiliary head; ours plus it rounds to it.
    assert round(with_aux / 1e6) * 1_000_000 == spec.reference_params
    # The note quotes the count with the auxiliary head: it must be the code's.
    assert f"with it {with_aux:,}" in spec.reference_note
    assert spec.num_classes == 150 and spec.family == "upernet" and spec.size_divisor == 32


def test_aux_head_count_is_mmsegs_fcn_head() -> None:
    head = torch.nn.Sequential(
        torch.nn.Conv2d(384, 256, 3, padding=1, bias=False), torch.nn.BatchNorm2d(256), torch.nn.Conv2d(256, 150, 1)
    )
    assert aux_head_params(384) == sum(p.numel() for p in head.parameters()) == 923_798


@pytest.mark.parametrize(("name", "channels"), [
    ("upernet_swin_s", (96, 192, 384, 768)), ("upernet_swin_b", (128, 256, 512, 1024))
])
def test_larger_variants_forward_at_an_odd_size(name: str, channels: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=3)
    assert tuple(model.backbone.out_channels) == channels
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, 65, 47))
        out = model(torch.randn(2, 3, 65, 47))
    assert [tuple(f.shape[-2:]) for f in features] == [(16, 11), (8, 6), (4, 3), (2, 2)]
    assert out.shape == (2, 3, 65, 47) and torch.isfinite(out).all()


def test_depths_and_heads_are_the_papers() -> None:
    """Swin-T (2, 2, 6, 2), Swin-S/B (2, 2, 18, 2); heads = channels / 32."""
    for name, depths in [("upernet_swin_t", [2, 2, 6, 2]), ("upernet_swin_s", [2, 2, 18, 2]), ("upernet_swin_b", [2, 2, 18, 2])]:
        with torch.device("meta"):
            backbone = build_model(name).backbone
        stages = [backbone.features[i] for i in (1, 3, 5, 7)]
        assert [len(s) for s in stages] == depths
        for stage, dim in zip(stages, backbone.out_channels):
            assert {b.attn.num_heads for b in stage} == {dim // 32}
            assert [b.attn.shift_size for b in stage] == [0, 3] * (len(stage) // 2)
            assert {b.attn.window_size for b in stage} == {7}
    assert re.search(r"auxiliary FCN head", get_spec("upernet_swin_t").reference_note)
