"""torchvision's MobileNetV3 segmentation checkpoints load strict into segedge and agree.

Runs where torchvision is installed (it is not a segedge dependency): random weights, BN
statistics perturbed so that the running mean/var matter, eval mode, three odd sizes.
"""

from __future__ import annotations

import pytest
import torch

from segedge.models import build_model

from .torchvision_compat import assert_agrees, prepared, without_aux

segmentation = pytest.importorskip("torchvision.models.segmentation")
pytestmark = pytest.mark.byo  # torchvision: the second venv (.venv-tv), see .ci/run

SIZES = ((97, 129), (65, 47), (80, 56))


@pytest.mark.parametrize(
    "name, extra", [("deeplabv3_mobilenet_v3_large", {"aux_loss": True}), ("lraspp_mobilenet_v3_large", {})]
)
def test_torchvision_state_dict_loads_and_agrees(name: str, extra: dict) -> None:
    torch.manual_seed(0)
    reference = prepared(getattr(segmentation, name)(weights=None, weights_backbone=None, num_classes=21, **extra))
    ours = build_model(name, num_classes=21).eval()
    ours.load_state_dict(without_aux(reference.state_dict()), strict=True)
    assert_agrees(ours, lambda x: reference(x)["out"], SIZES)


def test_mobilenet_v2_imagenet_keys_load_into_backbone() -> None:
    from torchvision.models import mobilenet_v2

    from segedge.models.backbones.mobilenetv2 import MobileNetV2

    torch.manual_seed(0)
    reference = prepared(mobilenet_v2(weights=None))
    # DeepLab drops the ImageNet-only 1x1 conv to 1280 (features.18) and the classifier.
    state = {
        k.removeprefix("features."): v
        for k, v in reference.state_dict().items()
        if k.startswith("features.") and not k.startswith("features.18.")
    }
    ours = MobileNetV2(output_stride=32).eval()
    ours.load_state_dict(state, strict=True)
    assert_agrees(lambda x: ours(x)[-1], reference.features[:18], [(65, 47)])
