"""torchvision's MobileNetV3 segmentation checkpoints load strict into segedge and agree.

Runs where torchvision is installed (it is not a segedge dependency): random weights, BN
statistics perturbed so that the running mean/var matter, eval mode, three odd sizes.
"""

from __future__ import annotations

import pytest
import torch

from segedge.models import build_model

segmentation = pytest.importorskip("torchvision.models.segmentation")

MAX_RELATIVE = 1e-5
SIZES = ((97, 129), (65, 47), (80, 56))


def randomize_batch_norm(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


@pytest.mark.parametrize(
    "name, extra", [("deeplabv3_mobilenet_v3_large", {"aux_loss": True}), ("lraspp_mobilenet_v3_large", {})]
)
def test_torchvision_state_dict_loads_and_agrees(name: str, extra: dict) -> None:
    torch.manual_seed(0)
    reference = getattr(segmentation, name)(weights=None, weights_backbone=None, num_classes=21, **extra)
    with torch.no_grad():
        randomize_batch_norm(reference)
    reference.eval()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("aux_classifier.")}
    ours = build_model(name, num_classes=21)
    ours.load_state_dict(state, strict=True)
    for i, (h, w) in enumerate(SIZES):
        x = torch.randn(1 + i % 2, 3, h, w)
        with torch.no_grad():
            expected, got = reference(x)["out"], ours(x)
        assert got.shape == expected.shape
        relative = (got - expected).abs().max() / expected.abs().max()
        assert relative <= MAX_RELATIVE, (name, h, w, float(relative))


def test_mobilenet_v2_imagenet_keys_load_into_backbone() -> None:
    from torchvision.models import mobilenet_v2

    from segedge.models.backbones.mobilenetv2 import MobileNetV2

    torch.manual_seed(0)
    reference = mobilenet_v2(weights=None)
    with torch.no_grad():
        randomize_batch_norm(reference)
    reference.eval()
    # DeepLab drops the ImageNet-only 1x1 conv to 1280 (features.18) and the classifier.
    state = {
        k.removeprefix("features."): v
        for k, v in reference.state_dict().items()
        if k.startswith("features.") and not k.startswith("features.18.")
    }
    ours = MobileNetV2(output_stride=32).eval()
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 65, 47)
    with torch.no_grad():
        expected, got = reference.features[:18](x), ours(x)[-1]
    assert got.shape == expected.shape
    assert (got - expected).abs().max() / expected.abs().max() <= MAX_RELATIVE
