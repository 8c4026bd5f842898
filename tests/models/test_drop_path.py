"""Stochastic depth: whole samples dropped and the rest rescaled in training, identity in eval."""

from __future__ import annotations

import pytest
import torch

from segedge.models.backbones.drop_path import DropPath, linear_drop_rates


def test_identity_in_eval() -> None:
    x = torch.randn(8, 5, 3)
    assert DropPath(0.5).eval()(x) is x


def test_training_drops_whole_samples_and_rescales() -> None:
    torch.manual_seed(0)
    x = torch.ones(4000, 3, 2)
    out = DropPath(0.25).train()(x)
    per_sample = out.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()
    assert (per_sample[:, 0] == 0).float().mean().item() == pytest.approx(0.25, abs=0.03)


def test_linear_drop_rates_rise_from_zero_to_the_total() -> None:
    assert linear_drop_rates(0.3, (2, 2, 6, 2)) == pytest.approx([0.3 * i / 11 for i in range(12)])
    assert linear_drop_rates(0.1, (1,)) == [0.0]
