from .base import ModelTestBase


class TestDeepLabV3PlusResNet50(ModelTestBase):
    name = "deeplabv3plus_resnet50"


class TestDeepLabV3PlusResNet101(ModelTestBase):
    name = "deeplabv3plus_resnet101"
    build_kwargs = {"output_stride": 8}
