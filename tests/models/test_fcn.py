import torch

from segedge.models import build_model
from segedge.models.align import bilinear_upsampling
from segedge.models.ops import resize_to

from .base import ModelTestBase


class TestFCN32s(ModelTestBase):
    name = "fcn32s"
    build_kwargs = {"fc_channels": 256}  # 4096 makes a 540 MB graph; the wiring is the same


class TestFCN16s(ModelTestBase):
    name = "fcn16s"
    build_kwargs = {"fc_channels": 256}  # 4096 makes a 540 MB graph; the wiring is the same


class TestFCN8s(ModelTestBase):
    name = "fcn8s"
    build_kwargs = {"fc_channels": 256}  # 4096 makes a 540 MB graph; the wiring is the same


class TestFCNResNet50(ModelTestBase):
    name = "fcn_resnet50"


class TestFCNResNet101(ModelTestBase):
    name = "fcn_resnet101"


CAFFE_FCN8S_LAYERS = ("fc6.0", "fc7.0", "score_fr", "upscore2", "score_pool4", "upscore_pool4", "score_pool3")


def test_caffe_and_torchvision_key_names() -> None:
    vgg = build_model("fcn8s").state_dict()
    assert "backbone.features.28.weight" in vgg  # conv5_3 at torchvision's index
    assert all(f"{layer}.weight" in vgg for layer in CAFFE_FCN8S_LAYERS)
    assert vgg["fc6.0.weight"].shape == (4096, 512, 7, 7)
    resnet = build_model("fcn_resnet50").state_dict()
    assert "classifier.4.bias" in resnet and not any(k.startswith("head.") for k in resnet)


def test_upsampling_starts_as_bilinear_interpolation() -> None:
    x = torch.randn(1, 3, 6, 7)
    with torch.no_grad():
        up = bilinear_upsampling(3, 2)(x)
    # Equal to align_corners=False interpolation away from the one-pixel border.
    torch.testing.assert_close(up[..., 1:-1, 1:-1], resize_to(x, (12, 14))[..., 1:-1, 1:-1])
