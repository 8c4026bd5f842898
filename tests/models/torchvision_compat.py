"""What the torchvision-compatibility tests share: a torchvision reference with meaningful BN
statistics, and the agreement check against it.

Random weights alone would leave BatchNorm's running mean/var at 0/1, so a key mapped to the wrong
statistics would go unnoticed; they are perturbed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

MAX_RELATIVE = 1e-5


def prepared(reference: torch.nn.Module) -> torch.nn.Module:
    """`reference` with perturbed BatchNorm statistics and affine weights, in eval mode."""
    with torch.no_grad():
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
    return reference.eval()


def without_aux(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's state_dict minus the training-only auxiliary head."""
    return {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}


def max_relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    assert got.shape == expected.shape
    return float((got - expected).abs().max() / expected.abs().max())


Forward = Callable[[torch.Tensor], torch.Tensor]


def assert_agrees(ours: Forward, reference: Forward, sizes: Iterable[tuple[int, int]]) -> None:
    """Same output (relative to its range) at each size, both in eval mode; batches of 1 and 2 alternate."""
    for i, (h, w) in enumerate(sizes):
        x = torch.randn(1 + i % 2, 3, h, w)
        with torch.no_grad():
            assert max_relative(ours(x), reference(x)) <= MAX_RELATIVE, (h, w)
