"""Tiny user models for pipeline and CLI tests (`tests/tiny_models.py:build` on the command line).

They export in a second, so tests exercise the real exporter, onnxsim and ONNX Runtime without
paying for a ResNet every time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinySegNet(nn.Module):
    """conv -> stride-2 conv -> 1x1 classifier -> bilinear back to the input size."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.classifier = nn.Conv2d(16, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.down(self.stem(x)))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


class DictOutput(nn.Module):
    """Returns torchvision's `{"out": ..., "aux": ...}` dict."""

    def __init__(self) -> None:
        super().__init__()
        self.net = TinySegNet(3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(x)
        return {"out": out, "aux": out * 0.5}


def build(num_classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return TinySegNet(num_classes)


def build_dict() -> nn.Module:
    torch.manual_seed(0)
    return DictOutput()


def build_binary() -> nn.Module:
    torch.manual_seed(0)
    return TinySegNet(1)


def build_broken() -> nn.Module:
    raise RuntimeError("this builder always fails")


def build_not_a_module():
    return "not a module"
