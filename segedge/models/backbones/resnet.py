"""ResNet-50/101 (He et al. 2016, torchvision's v1.5: stride on the 3x3 conv) as a dilatable backbone.

Layer names are torchvision's (`conv1`, `bn1`, `layer1`..`layer4`, `downsample`), so a
torchvision ResNet or segmentation checkpoint loads as it is. Past `output_stride`, a stage's
stride becomes dilation; the first block of a dilated stage keeps the previous dilation for its
3x3 conv, as torchvision's `replace_stride_with_dilation` does. `multi_grid` multiplies the
last stage's dilation per block (DeepLab v3's Multi-Grid (1, 2, 4)).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .base import Backbone, stride_to_dilation


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(
            width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(Backbone):
    """Returns the outputs of layer1..layer4 (reductions 4, 8, 16, 32 before dilation)."""

    def __init__(
        self,
        layers: Sequence[int],
        output_stride: int = 32,
        multi_grid: Sequence[int] = (1, 1, 1),
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        if len(multi_grid) != layers[3]:
            raise ValueError(f"multi_grid needs {layers[3]} values, got {len(multi_grid)}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)

        strides, dilations = stride_to_dilation([4, 1, 2, 2, 2], output_stride)
        self.in_ch = 64
        self.layer1 = self._make_layer(64, layers[0], strides[1], dilations[0], dilations[1])
        self.layer2 = self._make_layer(128, layers[1], strides[2], dilations[1], dilations[2])
        self.layer3 = self._make_layer(256, layers[2], strides[3], dilations[2], dilations[3])
        self.layer4 = self._make_layer(
            512, layers[3], strides[4], dilations[3], dilations[4], multi_grid
        )
        self.out_channels = (256, 512, 1024, 2048)
        self.reductions = (4, 4 * strides[2], 4 * strides[2] * strides[3], output_stride)
        self.output_stride = output_stride

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(
        self,
        width: int,
        blocks: int,
        stride: int,
        previous_dilation: int,
        dilation: int,
        multi_grid: Sequence[int] | None = None,
    ) -> nn.Sequential:
        grid = list(multi_grid) if multi_grid is not None else [1] * blocks
        # torchvision keeps the previous dilation on the first block of a newly dilated stage;
        # with Multi-Grid the paper sets every block's rate to dilation * grid[i].
        first = dilation * grid[0] if multi_grid is not None and grid != [1] * blocks else previous_dilation
        layers = [Bottleneck(self.in_ch, width, stride, first)]
        self.in_ch = width * Bottleneck.expansion
        layers += [Bottleneck(self.in_ch, width, 1, dilation * grid[i]) for i in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [c1, c2, c3, c4]


def resnet50(output_stride: int = 32, multi_grid: Sequence[int] = (1, 1, 1)) -> ResNet:
    return ResNet([3, 4, 6, 3], output_stride, multi_grid)


def resnet101(output_stride: int = 32, multi_grid: Sequence[int] = (1, 1, 1)) -> ResNet:
    return ResNet([3, 4, 23, 3], output_stride, multi_grid)
