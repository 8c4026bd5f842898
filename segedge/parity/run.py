"""`segedge verify`'s work: an ONNX model against the PyTorch model its card names, or another ONNX file.

On generated inputs at given sizes (the export size and a non-square other one by default), or
on a folder of images prepared as the Predictor prepares them (the fair test of a quantized model
calibrated on photos). Judged by the preset of the model's precision, with the user's overrides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtimes.backends.run_batch import RunBatch
from runtimes.backends import RuntimeSpec, chosen_backend, open_runner
from runtimes.model.card import ModelCard
from runtimes.errors import CardError
from runtimes.imaging.image import load_image
from runtimes.measure.parity import PRESETS, ParityCheck, Tolerance, check_images, check_sizes
from runtimes.model.precision import Precision
from runtimes.backends.onnxruntime_session import ModelSession, open_session
from segedge.data.demo import recorded_dataset
from segedge.data.labelled import labelled_pairs

MAX_VERIFY_IMAGES = 32
Progress = Callable[[str], None]


@dataclass(frozen=True)
class VerifyRequest:
    model: Path
    reference: Path | None = None  # an ONNX file; None: the PyTorch model the card names
    weights: Path | None = None  # for the PyTorch reference
    sizes: tuple[tuple[int, int], ...] | None = None
    images: Path | None = None
    preset: Precision | None = None  # default: the card's precision
    atol: float | None = None
    rtol: float | None = None
    min_agreement: float | None = None
    batch: int = 1
    seed: int = 0
    card_overrides: dict[str, Any] = field(default_factory=dict)  # for files exported elsewhere
    # What runs the model checked (runtime None: the file's own); the reference runs on PyTorch, or ORT's CPU.
    spec: RuntimeSpec = field(default_factory=RuntimeSpec)


@dataclass(frozen=True)
class VerifyResult:
    model: Path
    against: str
    preset: Precision
    tolerance: Tolerance
    providers: tuple[str, ...]
    checks: list[ParityCheck]
    generated: bool  # judged on generated inputs, not on photos
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "reference": self.against, "preset": self.preset.value,
                "providers": list(self.providers), "passed": self.passed,
                "results": [c.to_dict() for c in self.checks], "notes": self.notes}


def run_verify(request: VerifyRequest, progress: Progress = lambda message: None) -> VerifyResult:
    candidate = open_runner(request.model, request.spec, request.card_overrides)
    card = candidate.card
    if candidate.stored_card is None and request.reference is None:
        raise CardError(f"{request.model} has no segedge model card, so there is no PyTorch model to rebuild; "
                        "compare with --reference FILE")
    chosen = request.preset or Precision(card.precision)
    reduced = getattr(candidate, "precision", "f32")  # what OpenVINO runs the float parts at
    if request.preset is None and chosen is Precision.fp32 and reduced != "f32":
        chosen = Precision.fp16  # judged by the masks, as an fp16 file is (say --openvino-hint f32 for fp32's preset)
    tolerance = PRESETS[chosen].with_overrides(request.atol, request.rtol, request.min_agreement)
    notes: list[str] = []
    if request.reference is not None:
        against = f"ONNX {request.reference} (ORT CPU)"
        reference: RunBatch = open_session(request.reference, "cpu", overrides=request.card_overrides).run
    else:
        from segedge.parity.reference import reference_model, torch_runner

        against = "PyTorch"
        progress(f"rebuilding {card.source} in PyTorch")
        module, notes = reference_model(card, request.weights, progress)
        reference = torch_runner(module)
    runtime = chosen_backend(request.model, request.spec.runtime).name
    provider = candidate.provider.value if isinstance(candidate, ModelSession) else f"{runtime} {reduced}"
    images = verify_images(request, card)
    if images is not None:
        paths, where = images
        progress(f"comparing on {len(paths)} images of {where}")
        checks = [check_images(reference, candidate.run, card, ((load_image(p), None) for p in paths),
                               where, tolerance, provider=provider)]
    else:
        sizes = list(request.sizes or default_sizes(card))
        progress(f"comparing at {', '.join(f'{h}x{w}' for h, w in sizes)}")
        checks = check_sizes(reference, candidate.run, card, sizes, tolerance, provider=provider,
                             batch=request.batch, seed=request.seed)
    return VerifyResult(request.model, against, chosen, tolerance, candidate.active_providers, checks,
                        images is None, notes)


def verify_images(request: VerifyRequest, card: ModelCard) -> tuple[list[Path], str] | None:
    """(image files, what they are) to compare on; None for generated inputs.

    `--images DIR`; else, for a model with demo weights and no `--sizes`, its held-out split: the
    fair test of a quantized model, with no flag to remember.
    """
    from exporters.calibration import image_files, spread

    if request.images is not None:
        return spread(image_files(request.images), MAX_VERIFY_IMAGES), str(request.images)
    root = recorded_dataset(card) if request.sizes is None else None
    if root is None:
        return None
    held_out = [image for image, _ in labelled_pairs(root)]
    return spread(held_out, MAX_VERIFY_IMAGES), f"{root} (held-out split of the demo data)"


def default_sizes(card: ModelCard) -> list[tuple[int, int]]:
    """The export size, and for a dynamic model a second, non-square one."""
    return [card.input_size, other_size(card, card.input_size)] if card.dynamic else [card.input_size]


def other_size(card: ModelCard, size: tuple[int, int]) -> tuple[int, int]:
    """A second parity size unlike the export size, that the model takes: non-square, and not a
    stride multiple for a model that takes any size, a multiple of its size divisor for one that
    may not (smp's FPN refuses anything else), the export size plus divisor steps for a valid-mode one.

    A zoo model's divisor is the Predictor's padding, not a rule: every zoo model takes any size (tests/models),
    so it is checked at a size that is not a multiple. A user's or a foreign model's divisor is what
    segedge learned it needs."""
    h, w = size
    d = card.size_divisor
    if card.valid_margin:
        return (h + d, w + 2 * d)
    if d > 1 and card.architecture in ("user", "foreign"):
        other = (d * max(1, round(h * 3 / 4 / d)), d * max(1, round(w * 5 / 4 / d)))
        if other[0] == other[1] or other == size:
            other = (other[0], other[1] + d)
        return other
    return (max(33, h * 3 // 4 + 1), max(33, w * 5 // 4 + 3))
