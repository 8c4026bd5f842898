import pytest
import torch

from segedge.models import build_model
from segedge.models.unet import unet_valid_input_size

from .base import ModelTestBase


class TestUNetValid(ModelTestBase):
    name = "unet"
    build_kwargs = {"base_channels": 8}
    sizes = ((188, 204), (204, 188), (220, 236))
    margin = 92


class TestUNetSame(ModelTestBase):
    name = "unet"
    build_kwargs = {"base_channels": 8, "padding": "same"}


def test_paper_sizes() -> None:
    model = build_model("unet", base_channels=2)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 572, 572)).shape == (1, 2, 388, 388)


def test_valid_input_sizes() -> None:
    assert [unet_valid_input_size(s) for s in (1, 188, 189, 204, 205, 572)] == [188, 188, 204, 204, 220, 572]


def test_invalid_size_is_refused_in_eager_mode() -> None:
    model = build_model("unet", base_channels=2)
    with pytest.raises(ValueError, match="188 \\+ 16k.*pad to 204 x 188"):
        model(torch.zeros(1, 3, 190, 188))
