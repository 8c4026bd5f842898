"""The reference implementations' checkpoints load into the zoo's transformers and reproduce them.

torchvision's `swin_t/s/b` ImageNet state_dicts load into the Swin backbone (the classifier is
ignored with a note), and Hugging Face's `SegformerForSemanticSegmentation` state_dicts — with
transformers 5's key names and with the older ones its `save_pretrained` still writes (as on
the Hub) — load into `segformer_b0..b5`, through `--weights`' own loader. Outputs then equal the
reference's to 1e-5 relative. Weights are random (nothing is downloaded) with every norm's
affine and BatchNorm's statistics perturbed, so that a key loaded into the wrong norm shows.
Each reference test skips where its library is not installed (neither is a segedge dependency).
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from exporters.checkpoint import fit_state_dict, load_state_dict
from runtimes.errors import CheckpointError
from segedge.models import build_model
from segedge.models.ops import resize_to

from .torchvision_compat import MAX_RELATIVE, max_relative

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # building from a config never needs the Hub; be sure

SWIN_SIZES = ((225, 289), (65, 47), (13, 250))  # one-window sides at stage 4, stages 2-4, every stage's height
SEGFORMER_SIZES = ((97, 129), (65, 47), (225, 289))

# transformers' SegformerConfig for each variant (the other fields' defaults are MiT's).
HF_SEGFORMER = {
    "b0": dict(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2], decoder_hidden_size=256),
    "b1": dict(hidden_sizes=[64, 128, 320, 512], depths=[2, 2, 2, 2], decoder_hidden_size=256),
    "b2": dict(hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 6, 3], decoder_hidden_size=768),
    "b3": dict(hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 18, 3], decoder_hidden_size=768),
    "b4": dict(hidden_sizes=[64, 128, 320, 512], depths=[3, 8, 27, 3], decoder_hidden_size=768),
    "b5": dict(hidden_sizes=[64, 128, 320, 512], depths=[3, 6, 40, 3], decoder_hidden_size=768),
}


def perturbed(model: nn.Module) -> nn.Module:
    """`model` in eval mode with LayerNorm/BatchNorm affine weights and BN statistics away from 1/0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def saved(state: dict[str, torch.Tensor], path) -> dict[str, torch.Tensor]:
    """`state` after a round trip through a file and the loader `--weights` uses."""
    torch.save(state, path)
    return load_state_dict(path)


# -- the loader's hook ------------------------------------------------------------------------


class Renaming(nn.Module):
    """A model whose checkpoints come from elsewhere with `old.` where it says `linear.`."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def adapt_checkpoint(self, state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
        return {k.replace("old.", "linear."): v for k, v in state.items()}, ["renamed old.* to linear.*"]


def test_fit_state_dict_lets_the_model_rename_keys_first() -> None:
    source = nn.Linear(3, 2)
    model = Renaming()
    notes = fit_state_dict(model, {f"old.{k}": v for k, v in source.state_dict().items()})
    assert notes == ["renamed old.* to linear.*"]
    torch.testing.assert_close(model.linear.weight, source.weight, rtol=0, atol=0)


def test_an_adapted_checkpoint_is_still_checked_strictly() -> None:
    with pytest.raises(CheckpointError, match="missing keys .*linear.bias"):
        fit_state_dict(Renaming(), {"old.weight": torch.zeros(2, 3)})


# -- torchvision's Swin ------------------------------------------------------------------------


def torchvision_levels(reference: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """What our backbone should return with torchvision's weights: each stage's output, the last
    through torchvision's final norm, the others through a plain LayerNorm (norms.0-2 start as
    weight 1, bias 0); channels first."""
    levels = []
    for index, layer in enumerate(reference.features):
        x = layer(x)
        if index % 2 == 1:
            levels.append(x)
    levels = [nn.functional.layer_norm(f, f.shape[-1:]) for f in levels[:-1]] + [reference.norm(levels[-1])]
    return [f.permute(0, 3, 1, 2) for f in levels]


@pytest.mark.parametrize("variant", ["t", "s", "b"])
@pytest.mark.byo
def test_torchvision_swin_loads_into_the_backbone_and_agrees(variant: str, tmp_path) -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = perturbed(getattr(torchvision.models, f"swin_{variant}")(weights=None))
    backbone = build_model(f"upernet_swin_{variant}").backbone.eval()
    notes = fit_state_dict(backbone, saved(reference.state_dict(), tmp_path / "swin.pth"), f"swin_{variant}")
    assert len(notes) == 1 and "head.* ignored" in notes[0] and "norm.* loaded as norms.3" in notes[0]
    for i, (h, w) in enumerate(SWIN_SIZES if variant == "t" else SWIN_SIZES[:1]):
        x = torch.randn(1 + i % 2, 3, h, w)
        with torch.no_grad():
            ours, theirs = backbone(x), torchvision_levels(reference, x)
        for level, (got, expected) in enumerate(zip(ours, theirs)):
            assert max_relative(got, expected) <= MAX_RELATIVE, (variant, h, w, level)


@pytest.mark.byo
def test_a_swin_checkpoint_of_another_size_is_refused() -> None:
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        state = torchvision.models.swin_t(weights=None).state_dict()
        backbone = build_model("upernet_swin_s").backbone
    with pytest.raises(CheckpointError, match="missing keys .*features.5.6"):
        fit_state_dict(backbone, state, "swin_s")


# -- Hugging Face's SegFormer --------------------------------------------------------------------


def hugging_face_segformer(variant: str) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.SegformerConfig(num_labels=150, **HF_SEGFORMER[variant])
    return perturbed(transformers.SegformerForSemanticSegmentation(config))


def assert_segformer_agrees(ours: nn.Module, reference: nn.Module, sizes) -> None:
    """Ours returns logits at the input size; HF's at stride 4: compare after the same resize."""
    for i, (h, w) in enumerate(sizes):
        x = torch.randn(1 + i % 2, 3, h, w)
        with torch.no_grad():
            expected = resize_to(reference(pixel_values=x).logits, (h, w))
            assert max_relative(ours(x), expected) <= MAX_RELATIVE, (h, w)


@pytest.mark.parametrize("variant", [
    "b0", "b1", "b2", pytest.param("b3", marks=pytest.mark.slow),
    pytest.param("b4", marks=pytest.mark.slow), pytest.param("b5", marks=pytest.mark.slow),
])
def test_hugging_face_segformer_loads_and_agrees(variant: str, tmp_path) -> None:
    torch.manual_seed(0)
    reference = hugging_face_segformer(variant)
    ours = build_model(f"segformer_{variant}")
    notes = fit_state_dict(ours, saved(reference.state_dict(), tmp_path / "segformer.pth"), variant)
    assert notes == ["Hugging Face SegFormer checkpoint (transformers 5 names): segformer.* loaded as backbone.*"]
    assert_segformer_agrees(ours.eval(), reference, SEGFORMER_SIZES if variant == "b0" else SEGFORMER_SIZES[:1])


def test_hub_format_segformer_checkpoint_loads_and_agrees(tmp_path) -> None:
    """`save_pretrained` writes transformers 4's key names, those of the files on the Hub."""
    safetensors = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    reference = hugging_face_segformer("b0")
    reference.save_pretrained(tmp_path)
    state = safetensors.load_file(tmp_path / "model.safetensors")
    assert "segformer.encoder.block.0.0.attention.self.query.weight" in state  # the old names, really
    ours = build_model("segformer_b0")
    notes = fit_state_dict(ours, saved(state, tmp_path / "hub.pth"), "segformer_b0")
    assert notes == [
        "Hugging Face SegFormer checkpoint (transformers < 5 names (as on the Hub)): segformer.* loaded as backbone.*"
    ]
    assert_segformer_agrees(ours.eval(), reference, SEGFORMER_SIZES[:1])
