"""One forward pass before exporting, and what it tells about the model.

`torch.export` skips Python-level shape checks, so a size the model cannot take would otherwise
export silently: the dry run runs the model at the export size first. For a user's model, which
has no zoo defaults, it also fills the card: the class count, the output's resolution (the
input's, 1/k of it like SegFormer's 1/4 logits, or a valid-mode margin: `output_resolution`, the
one rule), the size divisor (from the library's convention, `--size-divisor`, or a probe) and
class names the library states (Hugging Face `id2label`). A failure inside the user's model is
one line naming the model, the size and the size rule, never a traceback.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from exporters.torch_to_onnx import LogitsOnly, pick_logits
from runtimes.model.card import ModelCard
from runtimes.errors import ExportError, ModelFileError, UsageError
from runtimes.model.inspection import output_resolution
from runtimes.imaging.palette import voc_palette
from segedge.sources.learned import Learned, learn, legal_size, probe_divisor


@dataclasses.dataclass(frozen=True)
class DryRun:
    card: ModelCard
    notes: list[str]


def dry_run(card: ModelCard, model: LogitsOnly, input_size: tuple[int, int], given_divisor: int | None) -> DryRun:
    """Run `model` at `input_size`; for a user's model, the card its output and library tell."""
    user = card.architecture == "user"
    learned = learn(model.model) if user else Learned()
    divisor = given_divisor or learned.size_divisor
    # A zoo model's own message states its rule (U-Net's 188 + 16k); a user's model may say nothing.
    rule = _rule(divisor, "--size-divisor" if given_divisor else learned.divisor_source) if user else ""
    raw = _forward(card, model.model, input_size, rule, divisor)
    try:
        out, notes = pick_logits(raw, model.output_key)
    except ExportError as exc:  # no such key, no tensor in the output
        raise UsageError(f"{card.source}: {exc}") from None
    if out.ndim != 4:
        raise UsageError(f"{card.source} returns a tensor of shape {list(out.shape)}; segedge needs N x C x H x W logits")
    if not user:
        return DryRun(card, notes)
    try:
        stride, margin = output_resolution(input_size, (int(out.shape[2]), int(out.shape[3])))
    except ModelFileError as exc:
        raise UsageError(f"{card.source}: {exc}") from None
    if learned.output_stride not in (None, stride):
        notes.append(f"the model's library says output stride {learned.output_stride}, its output at "
                     f"{input_size[0]}x{input_size[1]} says {stride}: the output wins")
    if divisor is None and card.dynamic:
        divisor = probe_divisor(lambda x: pick_logits(model.model(x), model.output_key)[0], input_size, stride, margin)
        probed = f"size divisor {divisor} (probed: the smallest power of two whose multiples run)"
        learned = dataclasses.replace(learned, facts=(*learned.facts, probed))
    notes += [f"learned from the model: {fact}" for fact in learned.facts]
    return DryRun(_user_card(card, int(out.shape[1]), learned, divisor or 1, stride, margin), notes)


def _forward(card: ModelCard, model: nn.Module, input_size: tuple[int, int], rule: str, divisor: int | None) -> object:
    try:
        with torch.no_grad():
            return model(torch.zeros(1, 3, *input_size))
    except Exception as exc:  # noqa: BLE001 - the user's model may raise anything: say it in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ""
        if divisor and any(side % divisor for side in input_size):
            h, w = legal_size(input_size, divisor)
            hint = f"; try --input-size {h}x{w}"
        said = f"{type(exc).__name__}: {first}" if rule else first
        raise UsageError(f"{card.source or card.name} cannot run at {input_size[0]}x{input_size[1]}: {said}"
                         + (f" ({rule})" if rule else "") + hint) from None


def _rule(divisor: int | None, source: str) -> str:
    if not divisor or divisor == 1:
        return "size rule: any size"
    return f"size rule: sides multiples of {divisor}" + (f", from {source}" if source else "")


def _user_card(card: ModelCard, channels: int, learned: Learned, divisor: int, stride: int, margin: int) -> ModelCard:
    n = max(channels, 2)
    classes = card.classes or (learned.classes if learned.classes and len(learned.classes) == n else None)
    if card.classes and len(card.classes) != n:
        raise UsageError(f"--classes names {len(card.classes)} classes but {card.source} outputs {n}")
    binary_kind = card.output_kind if card.output_kind == "sigmoid" else "logit"
    return dataclasses.replace(
        card,
        classes=classes or tuple(f"class_{i}" for i in range(n)),
        palette=card.palette or voc_palette(n),
        output_kind="logits" if channels > 1 else binary_kind,
        valid_margin=margin,
        output_stride=stride,
        # The Predictor pads to the divisor, and a 1/k output is upsampled exactly only from multiples of k.
        size_divisor=max(divisor, stride),
    )
