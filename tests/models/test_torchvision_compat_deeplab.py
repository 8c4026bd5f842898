"""torchvision's DeepLab v3 checkpoints load strict into segedge (minus the aux head) and agree.

Runs where torchvision is installed (it is not a segedge dependency): random weights, BN
statistics perturbed so that the running mean/var matter, eval mode, odd sizes.
"""

from __future__ import annotations

import pytest
import torch

from segedge.models import build_model, get_spec

from .torchvision_compat import assert_agrees, prepared, without_aux

torchvision = pytest.importorskip("torchvision")
pytestmark = pytest.mark.byo  # torchvision: the second venv (.venv-tv), see .ci/run

SIZES = ((97, 129), (65, 47))


@pytest.mark.parametrize("name", ["deeplabv3_resnet50", "deeplabv3_resnet101"])
def test_deeplabv3_checkpoint_loads_strict_and_agrees(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    builder = getattr(torchvision.models.segmentation, name)
    reference = prepared(builder(weights=None, weights_backbone=None, num_classes=21, aux_loss=True))
    torch.save(reference.state_dict(), tmp_path / f"{name}.pth")
    saved = torch.load(tmp_path / f"{name}.pth", weights_only=True)
    state = without_aux(saved)
    assert len(state) < len(saved)
    ours = build_model(name, num_classes=21).eval()
    ours.load_state_dict(state, strict=True)
    params = sum(p.numel() for p in ours.parameters())
    aux = sum(p.numel() for n, p in reference.named_parameters() if n.startswith("aux_classifier."))
    assert params + aux == sum(p.numel() for p in reference.parameters()) == get_spec(name).reference_params
    assert_agrees(ours, lambda x: reference(x)["out"], SIZES)
