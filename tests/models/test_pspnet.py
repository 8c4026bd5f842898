from .base import ModelTestBase


class TestPSPNetResNet50(ModelTestBase):
    name = "pspnet"


class TestPSPNetResNet101(ModelTestBase):
    name = "pspnet_resnet101"
