"""The PyTorch twin of tests/outlier_models.py, for the quantizers that read a PyTorch model (PT2E).

    image -> conv1 (3->8, 3x3) -> relu -> conv2 (8->8, 1x1) -> relu -> classifier (8->4, 1x1)

The same weights (the same generator and seed): conv2's last channel is a constant 500 (its bias),
a dense outlier the classifier ignores. XNNPACKQuantizer's per-tensor int8 activation of conv2's
result then rounds away the channels that decide the class, whichever observer finds its range.
`tests/outlier_torch.py:build` on the command line; deterministic, so the PyTorch model a card
records is rebuilt with the weights the export had.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

OUTLIER_MODULE = "conv2"


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
