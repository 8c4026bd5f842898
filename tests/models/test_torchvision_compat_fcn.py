"""torchvision's FCN checkpoints load strict into segedge and agree; so do VGG16's conv layers.

Runs where torchvision is installed (it is not a segedge dependency): random weights, BN
statistics perturbed so that the running mean/var matter, eval mode, odd sizes.
"""

from __future__ import annotations

import pytest
import torch

from segedge.models import build_model
from segedge.models.backbones.vgg import vgg16

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


def test_fcn_resnet50_checkpoint_loads_and_agrees(tmp_path) -> None:
    torch.manual_seed(0)
    reference = torchvision.models.segmentation.fcn_resnet50(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    )
    with torch.no_grad():
        randomize_batch_norm(reference)
    reference.eval()
    torch.save(reference.state_dict(), tmp_path / "fcn_resnet50.pth")
    saved = torch.load(tmp_path / "fcn_resnet50.pth", weights_only=True)
    ours = build_model("fcn_resnet50", num_classes=21)
    ours.load_state_dict({k: v for k, v in saved.items() if not k.startswith("aux_classifier.")}, strict=True)
    for i, (h, w) in enumerate(SIZES):
        x = torch.randn(1 + i % 2, 3, h, w)
        with torch.no_grad():
            assert max_relative(ours(x), reference(x)["out"]) <= MAX_RELATIVE, (h, w)


def test_vgg16_features_load_and_agree() -> None:
    torch.manual_seed(0)
    reference = torchvision.models.vgg16(weights=None).features.eval()
    ours = vgg16().eval()
    ours.load_state_dict({f"features.{k}": v for k, v in reference.state_dict().items()}, strict=True)
    x = torch.randn(1, 3, 97, 129)
    with torch.no_grad():
        assert max_relative(ours(x)[-1], reference(x)) <= MAX_RELATIVE
