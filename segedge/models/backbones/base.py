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
