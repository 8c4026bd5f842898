from .base import ModelTestBase


class TestUperNetResNet50(ModelTestBase):
    name = "upernet"


class TestUperNetResNet101(ModelTestBase):
    name = "upernet_resnet101"
