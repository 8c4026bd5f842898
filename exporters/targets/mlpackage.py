"""A PyTorch segmentation model to a Core ML .mlpackage (ML Program) with coremltools' own converter.

    nn.Module (logits) -> Pixels (the card's normalisation inside: the package takes 0..255 RGB pixels,
      the image input Vision's VNCoreMLRequest feeds) -> torch.export (H, W flexible in multiples of
      the size divisor; static when the graph will not convert so) -> ct.convert(convert_to="mlprogram",
      ImageType input, fp32 or fp16 compute) -> int8: ct.optimize.coreml.linear_quantize_weights
      (per-channel int8 weights, fp16 compute) -> the card and the target record in the user metadata

Core ML's ImageType scales every channel by one number, so the per-channel mean/std cannot be
given to it: the `Pixels` wrapper applies `(pixel * scale - mean) / std` (and the colour order) in
the graph, where the Predictor would. coremltools' TorchScript frontend breaks on numpy 2.4, and
its torch.export frontend is the one it develops: that is the one used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runtimes.backends.messages import runtime_reason
from runtimes.model.card import ModelCard
from runtimes.errors import ExportError

from .coreml_quiet import coremltools, silenced
from .metadata import to_json

DEPLOYMENT = "iOS16"  # ML Program with flexible shapes, fp16 and per-channel int8 weights: iOS 16 / macOS 13
MIN_SIDE = 32
MAX_SIDE = 4096
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


class Pixels(nn.Module):
    """`model` fed 0..255 RGB pixels: the card's colour order and normalisation done in the graph."""

    factor: torch.Tensor
    bias: torch.Tensor

    def __init__(self, model: nn.Module, card: ModelCard) -> None:
        super().__init__()
        self.model = model
        self.bgr = card.color_order == "BGR"
        self.register_buffer("factor", torch.tensor([card.scale / s for s in card.std]).view(1, 3, 1, 1))
        self.register_buffer("bias", torch.tensor([m / s for m, s in zip(card.mean, card.std)]).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            image = image.flip(1)
        return self.model(image * self.factor - self.bias)


@dataclass(frozen=True)
class Converted:
    model: Any  # coremltools.models.MLModel
    flexible: bool
    ranges: tuple[tuple[int, int], tuple[int, int]] | None
    note: str  # why static, when it is


def convert(model: nn.Module, card: ModelCard, precision: str) -> Converted:
    """Convert `model` (logits out, fed normalised input) for `card`; flexible H/W when it converts so."""
    ct = coremltools()
    wrapped = Pixels(model, card).eval()
    height, width = card.input_size
    divisor = max(card.size_divisor, 1)
    low = -(-MIN_SIDE // divisor) * divisor
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    try:
        flexible = _convert(ct, wrapped, (height, width), compute, divisor, low)
        converted = Converted(flexible, True, ((low, MAX_SIDE), (low, MAX_SIDE)), "")
    except Exception as exc:  # torch.export's constraint errors, coremltools' pass errors: static is the answer
        why = runtime_reason(exc)
        try:
            static = _convert(ct, wrapped, (height, width), compute, None, low)
        except Exception as inner:  # the static conversion is what must work
            raise ExportError(f"coremltools cannot convert the model: {runtime_reason(inner)}") from inner
        converted = Converted(static, False, None,
                              f"static {height}x{width} input: flexible H/W did not convert ({why[:200]})")
    if precision == "int8":
        with silenced():
            config = ct.optimize.coreml.OptimizationConfig(
                global_config=ct.optimize.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8"))
            quantized = ct.optimize.coreml.linear_quantize_weights(converted.model, config=config)
        converted = Converted(quantized, converted.flexible, converted.ranges, converted.note)
    return converted


def set_metadata(model: Any, card: ModelCard, record: dict[str, Any]) -> None:
    model.user_defined_metadata["segedge.card"] = card.to_json()
    model.user_defined_metadata["segedge.target"] = to_json(record)
    model.short_description = f"{card.name}: semantic segmentation, {len(card.classes)} classes ({', '.join(card.classes[:8])}" \
                               f"{', ...' if len(card.classes) > 8 else ''}); input RGB pixels, output logits N x C x H x W"
    model.input_description[INPUT_NAME] = "RGB image, 0..255 pixels (normalised inside the model)"
    model.output_description[OUTPUT_NAME] = "class scores (logits), 1 x C x H x W at the input's resolution"


def save(model: Any, path: Path) -> None:
    try:
        with silenced():
            model.save(os.fspath(path))
    except Exception as exc:  # coremltools' save raises whatever its writer meets
        raise ExportError(f"cannot save the Core ML package: {runtime_reason(exc)}") from exc


def _convert(ct: Any, wrapped: nn.Module, size: tuple[int, int], compute: Any, divisor: int | None, low: int) -> Any:
    example = (torch.zeros(1, 3, *size),)
    with silenced(), torch.no_grad():
        if divisor is None:
            program = torch.export.export(wrapped, example)
            shape: tuple[Any, ...] = (1, 3, *size)
        else:
            h = torch.export.Dim("h", min=low // divisor, max=MAX_SIDE // divisor)
            w = torch.export.Dim("w", min=low // divisor, max=MAX_SIDE // divisor)
            program = torch.export.export(wrapped, example, dynamic_shapes={"image": {2: divisor * h, 3: divisor * w}})
            shape = (1, 3, ct.RangeDim(low, MAX_SIDE, size[0]), ct.RangeDim(low, MAX_SIDE, size[1]))
        program = program.run_decompositions({})
        return ct.convert(program, convert_to="mlprogram", compute_precision=compute,
                          minimum_deployment_target=getattr(ct.target, DEPLOYMENT),
                          inputs=[ct.ImageType(name=INPUT_NAME, shape=shape, color_layout=ct.colorlayout.RGB)],
                          outputs=[ct.TensorType(name=OUTPUT_NAME)])
