from .base import ModelTestBase


class TestDeepLabV3MobileNetV3Large(ModelTestBase):
    name = "deeplabv3_mobilenet_v3_large"


class TestLRASPPMobileNetV3Large(ModelTestBase):
    name = "lraspp_mobilenet_v3_large"


class TestDeepLabV3PlusMobileNetV2(ModelTestBase):
    name = "deeplabv3plus_mobilenetv2"


class TestDeepLabV3PlusMobileNetV2Half(ModelTestBase):
    name = "deeplabv3plus_mobilenetv2"
    build_kwargs = {"width_mult": 0.5, "output_stride": 8}
