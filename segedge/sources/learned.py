"""What segedge learns from a user's model: its size rule, its output's resolution, its classes.

A model built by a library says much of what its card needs, each library in its own way:

- segmentation_models_pytorch: `model.encoder.output_stride` (32, or 16/8 when dilated) is the
  size divisor wherever the model checks it (`requires_divisible_input_shape`; smp's Unet does not);
- Hugging Face transformers: the config: SegFormer's patch strides (4, 2, 2, 2) give logits at
  1/4 and a divisor of 32; `config.id2label` names the classes;
- torchvision's segmentation models: their backbone's deepest feature (8 for the dilated ResNets,
  16 for MobileNetV3), as a divisor that keeps the features aligned (they take any size).

What no convention says is found by probing (`probe_divisor`): the smallest power of two d for
which sides that are multiples of d, but not of 2d, run and give the output the resolution rule
predicts. Each fact comes with where it came from, for the notes and the card.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

MAX_PROBED_DIVISOR = 64
Forward = Callable[[torch.Tensor], torch.Tensor]  # an N x 3 x H x W batch -> N x C x h x w logits


@dataclass(frozen=True)
class Learned:
    """Card facts a library's model states about itself; None where it says nothing."""

    size_divisor: int | None = None
    output_stride: int | None = None
    classes: tuple[str, ...] | None = None
    facts: tuple[str, ...] = ()  # "size divisor 32 (smp: encoder.output_stride)", ...

    @property
    def divisor_source(self) -> str:
        return next((f[f.index("(") + 1 : -1] for f in self.facts if f.startswith("size divisor")), "")


def learn(model: nn.Module) -> Learned:
    """What `model`'s library convention tells, trying each library in turn."""
    for convention in (from_smp, from_hugging_face, from_torchvision):
        learned = convention(model)
        if learned is not None:
            return learned
    return Learned()


def from_smp(model: nn.Module) -> Learned | None:
    """segmentation_models_pytorch: the encoder's output stride, where the model checks it."""
    encoder = getattr(model, "encoder", None)
    stride = getattr(encoder, "output_stride", None)
    if not type(model).__module__.startswith("segmentation_models_pytorch") or not isinstance(stride, int):
        return None
    # smp >= 0.5 says whether a model refuses other sizes; older ones always checked the stride.
    if not getattr(model, "requires_divisible_input_shape", True):
        return Learned(size_divisor=1, facts=("size divisor 1 (smp: requires_divisible_input_shape is False)",))
    return Learned(size_divisor=stride, facts=(f"size divisor {stride} (smp: encoder.output_stride)",))


def from_hugging_face(model: nn.Module) -> Learned | None:
    """Hugging Face transformers: the config's strides (SegFormer) and `id2label`."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "model_type") or not hasattr(config, "id2label"):
        return None
    facts: list[str] = []
    divisor = stride = None
    if config.model_type == "segformer":
        strides = [int(s) for s in config.strides]
        stride, divisor = strides[0], math.prod(strides)
        facts += [f"size divisor {divisor} (Hugging Face: the product of config.strides, {'x'.join(map(str, strides))})",
                  f"output stride {stride} (Hugging Face: config.strides[0])"]
    labels = {int(k): str(v) for k, v in dict(config.id2label).items()}
    classes = tuple(labels[i] for i in sorted(labels)) if sorted(labels) == list(range(len(labels))) else None
    if classes is not None and all(re.fullmatch(rf"LABEL_{i}", name) for i, name in enumerate(classes)):
        # transformers' placeholder names: a count, not names worth a card.
        classes = tuple(f"class_{i}" for i in range(len(classes)))
        facts.append(f"{len(classes)} classes (Hugging Face: config.num_labels)")
    elif classes is not None:
        facts.append(f"{len(classes)} classes (Hugging Face: config.id2label)")
    return Learned(size_divisor=divisor, output_stride=stride, classes=classes, facts=tuple(facts))


def from_torchvision(model: nn.Module) -> Learned | None:
    """torchvision's segmentation models: the stride of their backbone's deepest feature."""
    backbone = getattr(model, "backbone", None)
    if not type(model).__module__.startswith("torchvision.models.segmentation") or backbone is None:
        return None
    side = 128
    with torch.no_grad():
        features = backbone(torch.zeros(1, 3, side, side))
    stride = max(side // int(f.shape[-1]) for f in features.values())
    return Learned(size_divisor=stride, facts=(f"size divisor {stride} (torchvision: the backbone's deepest feature)",))


def probe_divisor(forward: Forward, input_size: tuple[int, int], output_stride: int, margin: int) -> int:
    """The smallest power of two d for which sides that are multiples of d only run right.

    "Right": the output has the size the model's resolution rule (its output stride, or its valid
    margin) predicts. Sides are picked near the export size. A valid-mode model takes the export
    size plus multiples of d. Returns the largest power of two dividing the export size when
    nothing smaller works (that size ran in the dry run).
    """
    d = 1
    while d <= MAX_PROBED_DIVISOR:
        size = _probe_size(input_size, d, margin)
        if _runs_right(forward, size, output_stride, margin):
            return max(d, output_stride)
        d *= 2
    h, w = input_size
    return max(min(h & -h, w & -w, MAX_PROBED_DIVISOR), output_stride)


def _probe_size(input_size: tuple[int, int], d: int, margin: int) -> tuple[int, int]:
    h, w = input_size
    if margin > 0:
        return h + d, w + d
    # Odd multiples of d: multiples of d, never of 2d.
    return tuple(d * (2 * max(1, round(side / (2 * d))) + 1) for side in (h, w))  # type: ignore[return-value]


def _runs_right(forward: Forward, size: tuple[int, int], stride: int, margin: int) -> bool:
    try:
        with torch.no_grad():
            out = forward(torch.zeros(1, 3, *size))
    except Exception:  # noqa: BLE001 - a refused size: the user's model may raise anything
        return False
    expected = tuple(math.ceil((side - 2 * margin) / stride) for side in size)
    return out.ndim == 4 and tuple(out.shape[2:]) == expected


def legal_size(size: tuple[int, int], divisor: int) -> tuple[int, int]:
    """The nearest size to `size` whose sides are multiples of `divisor` (at least one of it)."""
    return tuple(divisor * max(1, round(side / divisor)) for side in size)  # type: ignore[return-value]
