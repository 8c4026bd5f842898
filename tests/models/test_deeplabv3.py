import pytest

from runtimes.errors import UsageError
from segedge.models import build_model

from .base import ModelTestBase


class TestDeepLabV3ResNet50(ModelTestBase):
    name = "deeplabv3_resnet50"


class TestDeepLabV3ResNet101(ModelTestBase):
    name = "deeplabv3_resnet101"
    build_kwargs = {"output_stride": 16, "multi_grid": (1, 2, 4)}


def last_stage_dilations(model) -> list[int]:
    return [block.conv2.dilation[0] for block in model.backbone.layer4]


def test_head_is_torchvision_classifier() -> None:
    keys = build_model("deeplabv3_resnet50").state_dict()
    assert "classifier.0.convs.4.1.weight" in keys and "classifier.4.bias" in keys
    assert not any(k.startswith("head.") for k in keys)


def test_output_stride_sets_aspp_rates_and_multi_grid_the_dilations() -> None:
    os16 = build_model("deeplabv3_resnet50", output_stride=16, multi_grid=(1, 2, 4))
    assert [c[0].dilation[0] for c in os16.classifier[0].convs[1:4]] == [6, 12, 18]
    assert last_stage_dilations(os16) == [2, 4, 8]
    os8 = build_model("deeplabv3_resnet50")
    assert [c[0].dilation[0] for c in os8.classifier[0].convs[1:4]] == [12, 24, 36]
    assert last_stage_dilations(os8) == [2, 4, 4]  # torchvision: first block keeps the previous rate


def test_bad_output_stride_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="output_stride"):
        build_model("deeplabv3_resnet50", output_stride=32)
