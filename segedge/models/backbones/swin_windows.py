"""Swin's window bookkeeping, computed from the feature map's shape inside the graph.

Each function reads sizes from tensor shapes and turns them into tensors by arithmetic only —
no Python branch on a size, no size turned into a constant — so one exported graph (dynamo or
TorchScript, dynamic H and W) pads, shifts and masks correctly at every input size.

The one size-dependent decision of the reference, torchvision's
`if window_size >= pad_H: shift_size[0] = 0` (a side that holds a single window is not shifted),
is `effective_shift`: `shift * (1 - 1 // windows)` is `shift` for two windows or more and 0 for
one. Written as a Python `if`, torch.export would specialise it to the export size's answer.
The cyclic shift is a gather with a computed index rather than `torch.roll`, whose shift must
be a constant in ONNX.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

# Attention logits between tokens of different regions of a shifted window get this added
# (torchvision and the original code use -100, not -inf: exp(-100) is 0 in float32).
MASKED = -100.0

# A size read from a tensor's shape: an int in eager mode, a SymInt under torch.export and a
# traced 0-d tensor under the TorchScript exporter; the arithmetic below works on all three.
Size = Any


def windows_along(size: Size, window: int) -> Size:
    """How many windows cover `size` once it is padded to a multiple of `window` (at least 1)."""
    return (size + window - 1) // window


def effective_shift(windows: Size, shift: int) -> Size:
    """`shift` when the padded side holds two windows or more, 0 when it holds one."""
    return shift * (1 - 1 // windows)


def cyclic_shift(x: Tensor, shift: Size, dim: int) -> Tensor:
    """`torch.roll(x, -shift, dim)` for a shift computed at run time (0 <= shift < size)."""
    size = x.shape[dim]
    # The shift goes into arange's bounds, not added to its result: an integer tensor plus a Python
    # number is the one add ExecuTorch's XNNPACKQuantizer rewrites into a float32 constant (its
    # `_convert_scalars_to_attrs`), which made the index float and PT2E calibration fail.
    index = torch.arange(shift, shift + size, device=x.device)
    # wrap round without `%`: the dynamo exporter cannot take a run-time size as the divisor
    index = torch.where(index < size, index, index - size)
    return x.index_select(dim, index)


def partition(x: Tensor, window: int) -> Tensor:
    """B x (rows*w) x (cols*w) x C -> (B*rows*cols) x (w*w) x C, windows in row-major order.

    Laid out in two steps, through the windows' transpose, so that no step's input could be
    contiguous for some sizes and not for others: with torchvision's single permute, the
    copy is a no-op exactly when a side holds one window, and torch.export, deciding that,
    guards on it — exported at such a size, the graph held for batch 1 and sides of at most
    one window only.
    """
    b, h, w, c = x.shape
    grid = x.view(b, h // window, window, w // window, window, c)
    transposed = grid.permute(0, 1, 3, 4, 2, 5).contiguous()  # B x rows x cols x w(x) x w(y) x C
    return transposed.transpose(-3, -2).reshape(-1, window * window, c)


def merge(windows: Tensor, window: int, rows: Size, cols: Size) -> Tensor:
    """The inverse of `partition`: (B*rows*cols) x (w*w) x C -> B x (rows*w) x (cols*w) x C."""
    c = windows.shape[-1]
    grid = windows.view(-1, rows, cols, window, window, c)
    transposed = grid.transpose(-3, -2).contiguous()  # B x rows x cols x w(x) x w(y) x C
    return transposed.permute(0, 1, 4, 2, 3, 5).reshape(-1, rows * window, cols * window, c)


def region_ids(windows: Size, window: int, shift: Size, device: torch.device) -> Tensor:
    """Which of the three regions each row (or column) of the shifted, padded map comes from.

    After the shift by `shift`, the last `window` rows hold the first `shift` rows wrapped round
    from the top: rows [0, P-window) are region 0, [P-window, P-shift) region 1 and
    [P-shift, P) region 2, as in torchvision's `h_slices`. With no shift (one window) every row
    is region 1, so the side contributes no mask.
    """
    padded = windows * window
    position = torch.arange(padded, device=device)
    return (position >= padded - window).long() + (position >= padded - shift).long()


def shifted_window_mask(
    rows: Size, cols: Size, window: int, shift_h: Size, shift_w: Size, device: torch.device
) -> Tensor:
    """(rows*cols) x N x N additive mask: 0 within a region, MASKED across regions (N = w*w)."""
    ids_h = region_ids(rows, window, shift_h, device)
    ids_w = region_ids(cols, window, shift_w, device)
    regions = (ids_h[:, None] * 3 + ids_w[None, :])[None, :, :, None]  # 1 x P_h x P_w x 1
    regions = partition(regions, window)[..., 0]  # windows x N
    across = regions[:, :, None] != regions[:, None, :]
    return across.float() * MASKED
