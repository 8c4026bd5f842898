"""ONNX files as other tools write them: `torch.onnx.export` (the TorchScript exporter, as most
projects' export scripts still call it), no segedge card. Each mimics a kind of model users bring:

- `det`: a text-detection-style network (PaddleOCR's DB): five stride-2 stages and an FPN whose
  upsampled levels are *added*, so sides must be multiples of 32 (elsewhere ONNX Runtime fails
  to broadcast), one channel through a Sigmoid, trained with mean = std = 0.5.
- `nhwc`: takes N x H x W x 3 and returns N x H x W x C (TensorFlow-style exports).
- `argmax`: ends in an ArgMax: int64 N x H x W class indices.
- `static`: exported at a fixed 1 x 3 x 96 x 128.

Weights are seeded and shaped so that masks of the colourful test images hold several classes.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CLASSES = 4


class ColourNet(nn.Module):
    """conv -> stride-2 conv -> 1x1 classifier, resized to the input: class i+1 answers colour channel i."""

    def __init__(self, classes: int = CLASSES) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.classifier = nn.Conv2d(8, classes, 1)
        with torch.no_grad():
            for layer in (self.stem, self.down):
                layer.weight.mul_(0.2)
                layer.weight[:, :, 1, 1] += torch.eye(8, layer.in_channels)
            self.classifier.weight.mul_(0.1)
            for c in range(1, classes):
                self.classifier.weight[c, c - 1, 0, 0] += 3.0
            self.classifier.bias.zero_()
            self.classifier.bias[0] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.classifier(F.relu(self.down(F.relu(self.stem(x)))))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class DetNet(nn.Module):
    """Stride 32 and an additive FPN: only sides that are multiples of 32 work; a sigmoid probability out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        widths = (8, 8, 8, 8, 8)
        self.stages = nn.ModuleList(nn.Conv2d(3 if i == 0 else widths[i - 1], w, 3, stride=2, padding=1)
                                    for i, w in enumerate(widths))
        self.head = nn.Conv2d(8, 1, 3, padding=1)
        with torch.no_grad():
            for stage in self.stages:
                stage.weight.mul_(0.3)
                stage.weight[:, :, 1, 1] += torch.eye(8, stage.in_channels) * 0.8
            self.head.weight.zero_()
            self.head.weight[0, 0, 1, 1] = 6.0  # bright red regions are foreground
            self.head.bias.fill_(-1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = []
        y = x
        for stage in self.stages:
            y = F.relu(stage(y))
            levels.append(y)
        top = levels[-1]
        for level in reversed(levels[:-1]):  # scale factors, as DB's neck: sides must divide evenly
            top = F.interpolate(top, scale_factor=2.0, mode="nearest") + level
        out = F.interpolate(top, scale_factor=2.0, mode="nearest")
        return torch.sigmoid(self.head(out))


class NHWCNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = ColourNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class ArgMaxNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = ColourNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).argmax(dim=1)


def export(model: nn.Module, path: Path, sample: torch.Tensor, dynamic: dict | None) -> Path:
    """The user's own export script: TorchScript exporter, opset 17, dynamic axes as they name them."""
    with torch.no_grad():
        torch.onnx.export(model.eval(), (sample,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"], dynamic_axes=dynamic)
    return path


def build_foreign_models(folder: Path) -> dict[str, Path]:
    nchw = {"x": {0: "batch", 2: "height", 3: "width"}, "y": {0: "batch", 2: "height", 3: "width"}}
    return {
        "det": export(DetNet(), folder / "det.onnx", torch.randn(1, 3, 64, 96), nchw),
        "nhwc": export(NHWCNet(), folder / "nhwc.onnx", torch.randn(1, 48, 40, 3),
                       {"x": {0: "n", 1: "h", 2: "w"}, "y": {0: "n", 1: "h", 2: "w"}}),
        "argmax": export(ArgMaxNet(), folder / "argmax.onnx", torch.randn(1, 3, 48, 40),
                         {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 1: "h", 2: "w"}}),
        "static": export(ColourNet(), folder / "static.onnx", torch.randn(1, 3, 96, 128), None),
    }
