"""The one backbone contract every architecture builds on.

A backbone maps an image to a list of feature maps, shallow to deep, and says what they are:
`out_channels[i]` channels at `reductions[i]` times smaller than the input. `output_stride` is the
largest reduction it reaches: DeepLab's OS 8/16 and PSPNet's OS 8 are made by turning the strides
of the last stages into dilation, which leaves the channels alone and changes `reductions`.
"""

from __future__ import annotations

from torch import Tensor, nn


class Backbone(nn.Module):
    out_channels: tuple[int, ...]
    reductions: tuple[int, ...]
    output_stride: int

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - interface
        raise NotImplementedError


class SequentialBackbone(Backbone):
    """A backbone that is one chain of layers (the MobileNets), whose features are the outputs of
    chosen layers. The layers are children "0", "1", ... so that torchvision's `features.N` keys load."""

    def set_layers(self, layers: list[nn.Module], return_at: tuple[int, ...]) -> None:
        for index, layer in enumerate(layers):
            self.add_module(str(index), layer)
        self._return_at = return_at
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for index, layer in enumerate(self.children()):
            x = layer(x)
            if index in self._return_at:
                features.append(x)
        return features


def stride_to_dilation(strides: list[int], output_stride: int) -> tuple[list[int], list[int]]:
    """Per-stage (stride, dilation) once the running reduction would pass `output_stride`.

    `strides` are the stages' own strides (e.g. ResNet's [4, 2, 2, 2] counting the stem as one
    stage). A stage whose stride would take the reduction past `output_stride` gets stride 1 and
    multiplies the dilation carried into the following stages by its stride.
    """
    reduction, dilation = 1, 1
    out_strides, dilations = [], []
    for stride in strides:
        if reduction * stride > output_stride:
            dilation *= stride
            stride = 1
        reduction *= stride
        out_strides.append(stride)
        dilations.append(dilation)
    return out_strides, dilations
