"""Adaptive average and max pooling to k x k bins, written in ops that ONNX has.

ONNX has no adaptive pooling beyond the global one: the torch.export-based exporter bakes an
AveragePool sized for the export resolution (wrong at every other size) and the TorchScript
exporter refuses. PyTorch's bin i of k over a length L spans [floor(i*L/k), ceil((i+1)*L/k)),
so each axis is a k x L 0/1 matrix built from the input's shape at run time; two MatMuls sum
the bins and one division by the bin areas averages them. The max masks the positions outside
each bin with -inf and reduces, one axis at a time. Bins may overlap and L may be < k, as in
PyTorch. `None` in an output size keeps that axis, as in PyTorch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

OutputSize = int | tuple[int | None, int | None]


def bin_membership(length: int, bins: int, like: Tensor) -> Tensor:
    """A bins x length 0/1 matrix: row i marks the positions PyTorch averages into bin i."""
    index = torch.arange(bins, device=like.device)
    starts = (index * length) // bins
    ends = ((index + 1) * length + bins - 1) // bins
    positions = torch.arange(length, device=like.device)
    inside = (positions[None, :] >= starts[:, None]) & (positions[None, :] < ends[:, None])
    return inside.to(like.dtype)


def adaptive_avg_pool2d(x: Tensor, output_size: OutputSize) -> Tensor:
    """Equals `F.adaptive_avg_pool2d(x, output_size)` (None keeps that axis) and exports dynamically."""
    bins_h, bins_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    height, width = x.shape[-2], x.shape[-1]
    # The bin areas start from the rows' (or columns') sums, not from a 0-d tensor of ones: a 0-d
    # constant times a tensor is a mul ExecuTorch's XNNPACKQuantizer quantizes, and XNNPACK's
    # channels-last pass then fails on the 0-d quantized constant (PSPNet's ExecuTorch int8).
    area: Tensor | None = None
    if bins_h is not None:
        rows = bin_membership(height, bins_h, x)
        x = torch.matmul(rows, x)
        area = rows.sum(dim=1)[:, None]
    if bins_w is not None:
        cols = bin_membership(width, bins_w, x)
        x = torch.matmul(x, cols.t())
        col_area = cols.sum(dim=1)[None, :]
        area = col_area if area is None else area * col_area
    return x if area is None else x / area


def adaptive_max_pool2d(x: Tensor, output_size: OutputSize) -> Tensor:
    """Equals `F.adaptive_max_pool2d(x, output_size)` (values only) and exports dynamically."""
    bins_h, bins_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    if bins_h is not None:  # N,C,H,W -> N,C,kh,H,W -> max over H
        rows = bin_membership(x.shape[-2], bins_h, x).bool()[:, :, None]
        x = torch.where(rows, x[:, :, None], float("-inf")).amax(dim=3)
    if bins_w is not None:  # N,C,kh,W -> N,C,kh,kw,W -> max over W
        cols = bin_membership(x.shape[-1], bins_w, x).bool()
        x = torch.where(cols, x[:, :, :, None], float("-inf")).amax(dim=4)
    return x


class ExportableAdaptiveAvgPool2d(nn.Module):
    """Drop-in for `nn.AdaptiveAvgPool2d` that keeps dynamic H/W and parity in ONNX."""

    def __init__(self, output_size: OutputSize) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class ExportableAdaptiveMaxPool2d(nn.Module):
    """Drop-in for `nn.AdaptiveMaxPool2d` (without `return_indices`) that exports dynamically."""

    def __init__(self, output_size: OutputSize) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_max_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
