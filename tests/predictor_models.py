"""Tiny ONNX models for the Predictor, tiling and `segedge predict` tests.

Each exports in about a second; their weights are seeded so that every run sees the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from exporters.card_io import embed_card
from exporters.torch_to_onnx import export_onnx
from runtimes.model.card import ModelCard

CLASSES = ("background", "red", "green", "blue")
PALETTE = ((0, 0, 0), (200, 30, 30), (30, 200, 30), (30, 30, 200))


class SmallFieldNet(nn.Module):
    """conv -> stride-2 conv -> conv -> 1x1, resized back: a receptive field of 19 pixels.

    The first layer's weights make class i+1 respond to colour channel i, so label maps of
    coloured shapes hold several classes rather than one class everywhere.
    """

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.mix = nn.Conv2d(8, 8, 3, padding=1)
        self.classifier = nn.Conv2d(8, num_classes, 1)
        with torch.no_grad():
            for layer in (self.stem, self.down, self.mix):
                layer.weight.mul_(0.3)
                layer.weight[:, :, 1, 1] += torch.eye(8, layer.in_channels)
            self.classifier.weight.mul_(0.1)
            for c in range(1, min(num_classes, 4)):
                self.classifier.weight[c, c - 1, 0, 0] += 4.0
            self.classifier.bias.fill_(0.0)
            self.classifier.bias[0] = 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.stem(x))
        y = F.relu(self.down(y))
        y = self.classifier(F.relu(self.mix(y)))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class OneChannelNet(nn.Module):
    """A binary segmenter: foreground where the image is bright; `sigmoid` applied or not."""

    def __init__(self, sigmoid: bool) -> None:
        super().__init__()
        self.sigmoid = sigmoid
        self.conv = nn.Conv2d(3, 1, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.fill_(0.0)
            self.conv.weight[0, :, 1, 1] = 1.0
            self.conv.bias.fill_(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.sigmoid(y) if self.sigmoid else y


@dataclass(frozen=True)
class PredictorModels:
    multiclass: Path  # SmallFieldNet, 4 classes, size_divisor 8, card with classes and palette
    sigmoid: Path  # one channel holding a probability
    logit: Path  # one channel holding a logit
    no_card: Path  # SmallFieldNet without a card (a model exported elsewhere)
    bgr: Path  # SmallFieldNet whose card says BGR with other mean/std
    unet_valid: Path | None  # segedge's valid-mode U-Net, 4 base channels (None if not importable)


def export_with_card(model: nn.Module, path: Path, card: ModelCard | None, input_size=(64, 64)) -> Path:
    proto = export_onnx(model, path, input_size=input_size, exporter="torchscript")
    if card is not None:
        onnx.save(embed_card(proto, card), str(path))
    return path


def build_predictor_models(folder: Path) -> PredictorModels:
    torch.manual_seed(0)
    net = SmallFieldNet()
    card = ModelCard(name="small_field", classes=CLASSES, palette=PALETTE, size_divisor=8)
    return PredictorModels(
        multiclass=export_with_card(net, folder / "multiclass.onnx", card),
        sigmoid=export_with_card(OneChannelNet(True), folder / "sigmoid.onnx",
                                 ModelCard(name="fg", classes=("bg", "fg"), output_kind="sigmoid")),
        logit=export_with_card(OneChannelNet(False), folder / "logit.onnx",
                               ModelCard(name="fg", classes=("bg", "fg"), output_kind="logit")),
        no_card=export_with_card(net, folder / "no_card.onnx", None),
        bgr=export_with_card(net, folder / "bgr.onnx", ModelCard(
            name="bgr", classes=CLASSES, color_order="BGR", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), size_divisor=8)),
        unet_valid=_unet(folder / "unet_valid.onnx"),
    )


def _unet(path: Path) -> Path | None:
    try:
        from segedge.models.unet import VALID_MARGIN, VALID_STEP, unet
    except ImportError:
        return None
    torch.manual_seed(0)
    card = ModelCard(name="unet", architecture="unet", classes=("a", "b", "c"), input_size=(188, 188),
                     size_divisor=VALID_STEP, valid_margin=VALID_MARGIN)
    return export_with_card(unet(num_classes=3, base_channels=4).eval(), path, card, input_size=(188, 188))


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An RGB uint8 image of coloured rectangles on a noisy grey ground: several classes, sharp edges."""
    rng = np.random.default_rng(seed)
    image = rng.integers(60, 120, (height, width, 3), dtype=np.uint8)
    for _ in range(max(3, height * width // 4000)):
        y, x = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(1, max(2, height // 3)), rng.integers(1, max(2, width // 3))
        image[y : y + h, x : x + w] = 0
        image[y : y + h, x : x + w, rng.integers(0, 3)] = 255
    return image
