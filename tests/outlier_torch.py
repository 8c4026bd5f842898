"""The PyTorch twin of tests/outlier_models.py, for the quantizers that read a PyTorch model (PT2E).

    image -> conv1 (3->8, 3x3) -> relu -> conv2 (8->8, 1x1) -> relu -> classifier (8->4, 1x1)

The same weights (the same generator and seed): conv2's last channel is a constant 500 (its bias),
a dense outlier the classifier ignores. XNNPACKQuantizer's per-tensor int8 activation of conv2's
result then rounds away the channels that decide the class, whichever observer finds its range.
`tests/outlier_torch.py:build` on the command line; deterministic, so the PyTorch model a card
records is rebuilt with the weights the export had.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

OUTLIER_MODULE = "conv2"
SIZE = (32, 32)  # the tests' input size: every variant is a static file of it
SOURCE = "tests/outlier_torch.py:build"


class OutlierNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(7)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.classifier = nn.Conv2d(8, 4, 1, bias=False)
        w1 = rng.normal(0, 0.4, (8, 3, 3, 3))
        w2 = rng.normal(0, 1.0, (8, 8, 1, 1))
        b2 = np.zeros(8)
        w2[7], b2[7] = 0.0, 500.0  # the outlier channel
        w3 = rng.normal(0, 1.0, (4, 8, 1, 1))
        w3[:, :4] += 8.0 * np.eye(4)[:, :, None, None]  # clear margins between classes
        w3[:, 7] = 0.0
        with torch.no_grad():
            for param, value in ((self.conv1.weight, w1), (self.conv2.weight, w2), (self.conv2.bias, b2),
                                 (self.classifier.weight, w3)):
                param.copy_(torch.from_numpy(value).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.conv2(torch.relu(self.conv1(x)))))


def build() -> nn.Module:
    return OutlierNet().eval()


def write_calibration(root: Path) -> Path:
    """Eight 32 x 32 shapes images to calibrate and judge on (the folder of JPEGs)."""
    from segedge.data.shapes import ShapesConfig, write_shapes_dataset

    write_shapes_dataset(root / "shapes", ShapesConfig(train=8, val=4, size=SIZE, seed=3, version=3))
    return root / "shapes" / "JPEGImages"


def repair_setup(calib: Path, budget: float) -> tuple[Any, list[np.ndarray], Callable[[Any], Any]]:
    """(the static card, the calibration inputs prepared as the Predictor prepares them, a judge maker: the fp32
    file's runner -> a judge of argmax-agreement points within `budget` on the same images)."""
    from exporters.calibration import calibration_images
    from exporters.targets.images import model_input
    from runtimes.imaging.image import load_image
    from runtimes.model.card import ModelCard
    from segedge.quantize.judging import budget_judge

    card = ModelCard.for_foreign_model("outlier", 4, input_size=SIZE).with_overrides(dynamic=False)
    images = calibration_images(calib, 8)
    inputs = [model_input(load_image(p), card, SIZE) for p in images]
    return card, inputs, lambda reference: budget_judge(
        reference, card, ((lambda: ((load_image(p), None) for p in images)), "calib"), budget)
