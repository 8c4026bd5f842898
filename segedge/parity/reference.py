"""Parity between a PyTorch reference and an ONNX model (or between two ONNX models)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from exporters.checkpoint import fit_state_dict, load_state_dict
from exporters.torch_to_onnx import LogitsOnly
from runtimes.card import ModelCard
from runtimes.checks import Tolerance
from runtimes.errors import CardError
from runtimes.metrics import ParityReport, compare_logits
from runtimes.session import ModelSession

from .sources import build

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SizeParity:
    size: tuple[int, int]
    batch: int
    provider: str
    report: ParityReport
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {
            "size": list(self.size),
            "batch": self.batch,
            "provider": self.provider,
            "passed": self.passed,
            "failures": list(self.failures),
            **self.report.to_dict(),
        }


def reference_model(card: ModelCard, weights: str | os.PathLike[str] | None = None) -> tuple[nn.Module, list[str]]:
    """Rebuild the PyTorch model a card was exported from (+ its weights); returns notes too."""
    if not card.source:
        raise CardError("the model card names no source model; give the PyTorch reference with --reference")
    built = build(card.source, options=card.build_kwargs)
    notes = []
    if weights is not None:
        notes = fit_state_dict(built.module, load_state_dict(weights), card.name)
    return LogitsOnly(built.module).eval(), notes


def torch_runner(model: nn.Module) -> Runner:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).float().numpy()

    return run


def sample_input(card: ModelCard, batch: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """A normalised input batch: smooth random images pushed through the card's normalisation."""
    rng = np.random.default_rng(seed)
    h, w = size
    # Low-frequency noise upsampled: closer to photo statistics than white noise.
    coarse = rng.uniform(0, 255, (batch, 3, max(2, h // 16), max(2, w // 16)))
    rows = np.linspace(0, coarse.shape[2] - 1, h).round().astype(int)
    cols = np.linspace(0, coarse.shape[3] - 1, w).round().astype(int)
    pixels = coarse[:, :, rows][:, :, :, cols] + rng.normal(0, 12, (batch, 3, h, w))
    pixels = np.clip(pixels, 0, 255)
    mean = np.asarray(card.mean).reshape(1, 3, 1, 1)
    std = np.asarray(card.std).reshape(1, 3, 1, 1)
    return ((pixels * card.scale - mean) / std).astype(np.float32)


def compare(
    reference: Runner,
    candidate: ModelSession,
    card: ModelCard,
    sizes: Sequence[tuple[int, int]],
    tolerance: Tolerance,
    batch: int = 1,
    seed: int = 0,
) -> list[SizeParity]:
    results = []
    for i, size in enumerate(sizes):
        x = sample_input(card, batch, size, seed + i)
        report = compare_logits(reference(x), candidate.run(x))
        results.append(
            SizeParity(tuple(size), batch, candidate.provider.value, report, tuple(tolerance.failures(report)))
        )
    return results


def second_size(card: ModelCard, size: tuple[int, int]) -> tuple[int, int]:
    """A size unlike the export size: non-square and, for 'same' models, not a stride multiple."""
    h, w = size
    if card.valid_margin:
        d = card.size_divisor
        return (h + d, w + 2 * d)
    return (max(33, h * 3 // 4 + 1), max(33, w * 5 // 4 + 3))


def onnx_runner(session: ModelSession) -> Runner:
    return session.run


def describe_sizes(results: Sequence[SizeParity]) -> str:
    return ", ".join(f"{r.size[0]}x{r.size[1]}" for r in results)
