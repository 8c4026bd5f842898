"""Accuracy on a labelled folder: mIoU, pixel accuracy and per-class IoU, for several models alike.

Each model is a labeller: an H x W x 3 RGB image in, an H x W label map of the same size out.
ONNX files are run by `runtimes.Predictor` (what apps run, at each image's own size); a PyTorch
model gets the same preprocessing (`to_model_input` with its card) and the same crop back.
Masks are index or palette PNGs; 255 is ignored. Images stream one at a time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

from runtimes.backends import RuntimeSpec
from runtimes.model.card import ModelCard
from runtimes.errors import UsageError

from segedge.data.labelled import labelled_pairs
from segedge.evaluate.scoring import Accuracy, Labeller, evaluate, torch_labeller

if TYPE_CHECKING:
    from segedge.report.samples import SampleBook


def onnx_labeller(path: str | os.PathLike[str], spec: RuntimeSpec = RuntimeSpec(),
                  overrides: dict[str, Any] | None = None) -> tuple[Labeller, ModelCard]:
    from runtimes.predictor import Predictor

    predictor = Predictor(path, **spec.predictor_keywords(), **(overrides or {}))
    return predictor.predict, predictor.card


@dataclass(frozen=True)
class EvalRequest:
    data: Path | None = None  # None: the held-out split of the demo data a model's card records
    models: tuple[Path, ...] = ()  # ONNX files, run by the Predictor
    torch_model: str | None = None  # also a zoo model in PyTorch, built as a listed file's card says
    weights: Path | None = None  # for `torch_model`
    limit: int | None = None
    card_overrides: dict[str, Any] = field(default_factory=dict)  # for files exported elsewhere
    spec: RuntimeSpec = field(default_factory=RuntimeSpec)  # what runs the model files (runtime None: each file's own)

    def __post_init__(self) -> None:
        if not self.models and self.torch_model is None:
            raise UsageError("give at least one ONNX model, or --torch NAME")
        if self.weights is not None and self.torch_model is None:
            raise UsageError("--weights goes with --torch NAME")


@dataclass(frozen=True)
class EvalResult:
    data: Path
    images: int
    classes: tuple[str, ...]
    scores: list[tuple[str, Accuracy]]  # (row label, accuracy), in the order asked
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"data": str(self.data), "images": self.images, "classes": list(self.classes),
                "models": [{**a.to_dict(), "label": label} for label, a in self.scores]}


def run_eval(request: EvalRequest, progress: Callable[[str], None] = lambda message: None,
             samples: SampleBook | None = None) -> EvalResult:
    """Every model on the folder; with `samples`, each model's label maps are kept there too (for the HTML page)."""
    request = _with_demo_data(request)
    assert request.data is not None  # _with_demo_data found it or raised
    pairs = labelled_pairs(request.data, request.limit)
    scores: list[tuple[str, Accuracy]] = []
    cards: list[ModelCard] = []
    notes: list[str] = []
    for path in request.models:
        progress(f"evaluating {path} on {len(pairs)} images")
        labeller, card = onnx_labeller(path, request.spec, request.card_overrides)
        cards.append(card)
        label = f"{path.name} ({card.precision_label})"
        labeller = _sampled(samples, label, labeller, card, pairs, request.data)
        scores.append((label, evaluate(path.name, labeller, pairs, max(2, card.num_classes))))
    if request.torch_model is not None:
        progress(f"evaluating {request.torch_model} (PyTorch) on {len(pairs)} images")
        labeller, card, notes = _zoo_labeller(request.torch_model, request.weights, cards)
        cards.append(card)
        label = f"{request.torch_model} (PyTorch)"
        labeller = _sampled(samples, label, labeller, card, pairs, request.data)
        scores.append((label, evaluate(request.torch_model, labeller, pairs, max(2, card.num_classes))))
    return EvalResult(request.data, len(pairs), cards[0].classes, scores, notes)


def _sampled(samples: SampleBook | None, label: str, labeller: Labeller, card: ModelCard,
             pairs: Sequence[tuple[Path, Path]], data: Path) -> Labeller:
    """`labeller`, also handing each label map to `samples`, compared there with the ground truth."""
    if samples is None:
        return labeller
    if not samples.started:
        samples.start(pairs, card.classes, card.colors(), f"{len(pairs)} labelled images of {data}", reference=None)
    return samples.observed(label, lambda label_map: label_map, labeller)


def _with_demo_data(request: EvalRequest) -> EvalRequest:
    """Without --data: the held-out split of the demo dataset the first model's card records (or
    `--torch NAME --weights demo`'s); an error when no model brings data along."""
    if request.data is not None:
        return request
    from runtimes.backends.onnxruntime_session import open_session
    from segedge.data.demo import is_demo, recorded_dataset

    for path in request.models:
        root = recorded_dataset(open_session(path, "cpu").card)
        if root is not None:
            return dataclasses.replace(request, data=root)
    if request.torch_model is not None and is_demo(request.weights):
        from segedge.train.demo import demo_model

        return dataclasses.replace(request, data=demo_model(request.torch_model).data)
    raise UsageError("--data: give a labelled folder (only models trained with --weights demo bring their own)")


def _zoo_labeller(name: str, weights: Path | None, cards: list[ModelCard]) -> tuple[Labeller, ModelCard, list[str]]:
    """A zoo model in PyTorch, built with the builder keywords a listed ONNX file's card recorded
    (or, for `--weights demo`, as the demo export builds it), with its weights."""
    from exporters.checkpoint import fit_state_dict, load_state_dict
    from exporters.torch_to_onnx import LogitsOnly
    from segedge.data.demo import is_demo
    from segedge.sources import build
    from segedge.train.demo import demo_card, reference_weights

    recorded = next((c for c in cards if c.source == name), None)
    if recorded is None and is_demo(weights):
        recorded = demo_card(name)
    built = build(name, options=recorded.build_kwargs if recorded else None)
    checkpoint = reference_weights(recorded, weights) if recorded is not None else weights
    notes = fit_state_dict(built.module, load_state_dict(checkpoint), built.card.name) if checkpoint is not None else []
    model = LogitsOnly(built.module, recorded.output_key if recorded else None).eval()
    card = recorded or _user_card(name, built.card, model)
    return torch_labeller(model, card), card, notes


def _user_card(name: str, card: ModelCard, model: Any) -> ModelCard:
    """A user's model with no exported file listed: the card export's dry run would write (classes,
    output stride, size divisor); a zoo model's card is complete already."""
    from segedge.export.dry_run import dry_run
    from segedge.sources.build import is_user_source

    if not is_user_source(name):
        return card
    return dry_run(card, model, card.input_size, None).card
