"""torchvision's DeepLab v3 checkpoints load strict into segedge (minus the aux head) and agree.

Runs where torchvision is installed (it is not a segedge dependency): random weights, BN
statistics perturbed so that the running mean/var matter, eval mode, odd sizes.
"""

from __future__ import annotations

import pytest
import torch

from segedge.models import build_model, get_spec

torchvision = pytest.importorskip("torchvision")

MAX_RELATIVE = 1e-5
SIZES = ((97, 129), (65, 47))


def randomize_batch_norm(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def max_relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    assert got.shape == expected.shape
    return float((got - expected).abs().max() / expected.abs().max())


@pytest.mark.parametrize("name", ["deeplabv3_resnet50", "deeplabv3_resnet101"])
def test_deeplabv3_checkpoint_loads_strict_and_agrees(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    builder = getattr(torchvision.models.segmentation, name)
    reference = builder(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    with torch.no_grad():
        randomize_batch_norm(reference)
    reference.eval()
    torch.save(reference.state_dict(), tmp_path / f"{name}.pth")
    saved = torch.load(tmp_path / f"{name}.pth", weights_only=True)
    without_aux = {k: v for k, v in saved.items() if not k.startswith("aux_classifier.")}
    assert len(without_aux) < len(saved)
    ours = build_model(name, num_classes=21)
    ours.load_state_dict(without_aux, strict=True)
    params = sum(p.numel() for p in ours.parameters())
    aux = sum(p.numel() for n, p in reference.named_parameters() if n.startswith("aux_classifier."))
    assert params + aux == sum(p.numel() for p in reference.parameters()) == get_spec(name).reference_params
    for i, (h, w) in enumerate(SIZES):
        x = torch.randn(1 + i % 2, 3, h, w)
        with torch.no_grad():
            assert max_relative(ours(x), reference(x)["out"]) <= MAX_RELATIVE, (name, h, w)
