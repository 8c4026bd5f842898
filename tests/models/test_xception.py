from .base import ModelTestBase


class TestDeepLabV3PlusXception65(ModelTestBase):
    name = "deeplabv3plus_xception65"
