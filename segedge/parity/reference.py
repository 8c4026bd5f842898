"""The PyTorch side of parity: the reference model a card was exported from, as a `RunBatch`."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from exporters.checkpoint import fit_state_dict, load_state_dict
from exporters.torch_to_onnx import LogitsOnly
from runtimes.backends.run_batch import RunBatch
from runtimes.model.card import ModelCard
from runtimes.errors import CardError
from segedge.sources import build
from segedge.train.demo import reference_weights


def reference_model(card: ModelCard, weights: str | os.PathLike[str] | None = None,
                    progress: Callable[[str], None] = lambda message: None) -> tuple[nn.Module, list[str]]:
    """Rebuild the PyTorch model a card was exported from (+ its weights); returns notes too.

    `weights`: a checkpoint, or `demo`; without it, the demo weights the card records, if any.
    """
    if not card.source:
        raise CardError("the model card names no source model; give the reference with --reference")
    built = build(card.source, options=card.build_kwargs)
    notes = []
    checkpoint = reference_weights(card, weights, progress)
    if checkpoint is not None:
        notes = fit_state_dict(built.module, load_state_dict(checkpoint), card.name)
        if weights is None:
            notes.append(f"the reference loads the demo weights the card records ({card.training.get('recipe')})")
    return LogitsOnly(built.module, card.output_key).eval(), notes


def torch_runner(model: nn.Module) -> RunBatch:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).float().numpy()

    return run
