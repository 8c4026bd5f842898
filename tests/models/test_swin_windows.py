"""Swin's shape-derived window bookkeeping against the reference's own formulation: torch.roll,
and torchvision's slice-by-slice mask with its Python `if window >= padded: shift = 0`."""

from __future__ import annotations

import pytest
import torch

from segedge.models.backbones.swin_windows import (
    MASKED,
    cyclic_shift,
    effective_shift,
    merge,
    partition,
    shifted_window_mask,
    windows_along,
)

WINDOW, SHIFT = 7, 3


def reference_mask(padded_h: int, padded_w: int, window: int, shift: int) -> torch.Tensor:
    """torchvision's `shifted_window_attention` mask, written out with its Python branches."""
    shift_h = 0 if window >= padded_h else shift
    shift_w = 0 if window >= padded_w else shift
    labels = torch.zeros(padded_h, padded_w)
    count = 0
    for h in ((0, -window), (-window, -shift_h), (-shift_h, None)):
        for w in ((0, -window), (-window, -shift_w), (-shift_w, None)):
            labels[h[0] : h[1], w[0] : w[1]] = count
            count += 1
    labels = labels.view(padded_h // window, window, padded_w // window, window).permute(0, 2, 1, 3)
    labels = labels.reshape(-1, window * window)
    diff = labels.unsqueeze(1) - labels.unsqueeze(2)
    return diff.masked_fill(diff != 0, MASKED).masked_fill(diff == 0, 0.0)


@pytest.mark.parametrize(("size", "windows"), [(1, 1), (7, 1), (8, 2), (14, 2), (15, 3), (57, 9)])
def test_windows_along_covers_the_side(size: int, windows: int) -> None:
    assert windows_along(size, WINDOW) == windows


@pytest.mark.parametrize(("windows", "shift"), [(1, 0), (2, SHIFT), (3, SHIFT), (40, SHIFT)])
def test_a_side_of_one_window_is_not_shifted(windows: int, shift: int) -> None:
    assert effective_shift(windows, SHIFT) == shift


@pytest.mark.parametrize("shift", [0, 1, 3, 13])
def test_cyclic_shift_is_roll(shift: int) -> None:
    x = torch.randn(2, 14, 21, 3)
    for dim in (1, 2):
        torch.testing.assert_close(cyclic_shift(x, shift, dim), torch.roll(x, -shift, dims=dim), rtol=0, atol=0)


def test_partition_and_merge_are_inverse_and_row_major() -> None:
    x = torch.randn(2, 14, 21, 5)
    windows = partition(x, WINDOW)
    assert windows.shape == (2 * 2 * 3, 49, 5)
    torch.testing.assert_close(windows[1], x[0, :7, 7:14].reshape(49, 5))  # second window: top row, middle
    torch.testing.assert_close(merge(windows, WINDOW, 2, 3), x, rtol=0, atol=0)


@pytest.mark.parametrize(("padded_h", "padded_w"), [(7, 7), (7, 14), (14, 7), (14, 14), (21, 35), (56, 7)])
def test_mask_equals_torchvisions(padded_h: int, padded_w: int) -> None:
    rows, cols = padded_h // WINDOW, padded_w // WINDOW
    got = shifted_window_mask(
        rows, cols, WINDOW, effective_shift(rows, SHIFT), effective_shift(cols, SHIFT), torch.device("cpu")
    )
    torch.testing.assert_close(got, reference_mask(padded_h, padded_w, WINDOW, SHIFT), rtol=0, atol=0)


def test_mask_separates_wrapped_regions() -> None:
    mask = shifted_window_mask(2, 2, WINDOW, SHIFT, SHIFT, torch.device("cpu"))
    assert (mask[0] == 0).all()  # the top-left window holds one region only
    last = mask[-1]  # the bottom-right window holds four (2 x 2 regions of 4x4, 4x3, 3x4, 3x3 tokens)
    assert sorted(int(n) for n in (last == 0).sum(dim=1).unique()) == [9, 12, 16]


def test_cyclic_shift_survives_executorch_pt2e_calibration() -> None:
    """XNNPACKQuantizer turns the Python number of an `add` into a float32 constant: an index computed as
    `arange + shift` came out float and PT2E's calibration stopped in `index_select` (UperNet-Swin's
    ExecuTorch int8); the shifted index is integer and the shift still `roll`'s after calibration."""
    pytest.importorskip("executorch")
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    class Shifted(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return cyclic_shift(self.conv(x), SHIFT, 2)

    torch.manual_seed(0)
    model, x = Shifted().eval(), torch.randn(1, 3, 14, 21)
    graph = torch.export.export(model, (x,)).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        torch.testing.assert_close(prepared(x), torch.roll(model.conv(x), -SHIFT, dims=2), rtol=0, atol=0)
