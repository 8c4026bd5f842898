from segedge.models import build_model

from .base import ModelTestBase


class TestDeepLabV1(ModelTestBase):
    name = "deeplabv1"


def test_large_fov_geometry() -> None:
    model = build_model("deeplabv1")
    assert model.backbone.reductions == (2, 4, 8, 8, 8)
    assert model.backbone.features[24].dilation == (2, 2)  # conv5_1
    assert model.classifier[0].dilation == (12, 12) and model.classifier[0].out_channels == 1024
