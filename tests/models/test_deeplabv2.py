from .base import ModelTestBase


class TestDeepLabV2(ModelTestBase):
    name = "deeplabv2"
