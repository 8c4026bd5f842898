from .base import ModelTestBase


class TestHRNetW18OCR(ModelTestBase):
    name = "hrnet_w18_ocr"


class TestHRNetW48OCR(ModelTestBase):
    name = "hrnet_w48_ocr"
    sizes = ((65, 47), (33, 41), (50, 38))
