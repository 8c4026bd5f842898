"""torchvision's FCN checkpoints load strict into segedge and agree; so do VGG16's conv layers.

Runs where torchvision is installed (it is not a segedge dependency): random weights, BN
statistics perturbed so that the running mean/var matter, eval mode, odd sizes.
"""

from __future__ import annotations

import pytest
import torch

from segedge.models import build_model
from segedge.models.backbones.vgg import vgg16

from .torchvision_compat import assert_agrees, prepared, without_aux

torchvision = pytest.importorskip("torchvision")
pytestmark = pytest.mark.byo  # torchvision: the second venv (.venv-tv), see .ci/run

SIZES = ((97, 129), (65, 47))


def test_fcn_resnet50_checkpoint_loads_and_agrees(tmp_path) -> None:
    torch.manual_seed(0)
    reference = prepared(torchvision.models.segmentation.fcn_resnet50(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    ))
    torch.save(reference.state_dict(), tmp_path / "fcn_resnet50.pth")
    saved = torch.load(tmp_path / "fcn_resnet50.pth", weights_only=True)
    ours = build_model("fcn_resnet50", num_classes=21).eval()
    ours.load_state_dict(without_aux(saved), strict=True)
    assert_agrees(ours, lambda x: reference(x)["out"], SIZES)


def test_vgg16_features_load_and_agree() -> None:
    torch.manual_seed(0)
    reference = torchvision.models.vgg16(weights=None).features.eval()
    ours = vgg16().eval()
    ours.load_state_dict({f"features.{k}": v for k, v in reference.state_dict().items()}, strict=True)
    assert_agrees(lambda x: ours(x)[-1], reference, [(97, 129)])
