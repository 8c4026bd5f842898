"""`build_from_torch`: the LiteRT and ExecuTorch targets, converted from the PyTorch model by each runtime's own tools.

    model + card -> fp32 artefact (litert-torch / ExecuTorch) -> its delegate check
        [int8: the runtime's own quantizer (ExecuTorch: PT2E with XNNPACKQuantizer; LiteRT: ai-edge-quantizer
               on the converted file), calibrated on images prepared as the Predictor prepares them
               -> the int8 artefact -> its delegate check]
        -> on_checks(reports), before anything is written
        -> verified here on the runtime's own Python API: fp32 against PyTorch eager, int8 against the
           fp32 artefact on the same runtime (the one parity judge, `exporters.targets.verify.compare`)
        -> the verification recorded in the card inside the artefact -> moved into place atomically

These targets never start from an ONNX file: each runtime's converter reads the PyTorch program.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from runtimes.model.card import ModelCard
from runtimes.errors import UsageError
from runtimes.guards.fileio import atomic_path, ensure_writable, work_folder
from runtimes.imaging.image import load_image
from runtimes.guards.outputs import Input, check_outputs

from ..calibration import calibration_images, image_files, spread
from ..int8_options import DEFAULT_CALIB_COUNT
from .images import image_size_for, model_input, synthetic_images
from .result import CheckReport, TargetResult, Verification
from .table import Artefact, Target, get_target
from .verify import Runner, compare

VERIFY_IMAGES = 8
# segedge's repair search for a target's own quantizer (segedge.quantize.adapters: pt2e.repairing_pt2e for ExecuTorch,
# litert_aeq.repairing_litert for LiteRT): given the model, its size, the dynamic sides' bounds (None: static) and the
# calibration inputs, the quantizer options to build the int8 with (ExecuTorch: {"observer", "kept": node names};
# LiteRT: {"kept": op scopes}) and the search's record for the card ("repair").
Repairer = Callable[[nn.Module, tuple[int, int], "tuple[int, int] | None", list[np.ndarray]], dict[str, Any]]
DEFAULT_MAX_SIDE = 1024  # ExecuTorch's dynamic programs: the largest side before the Predictor tiles
DEFAULT_MIN_SIDE = 64  # ... and the smallest side they take
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TorchTargetRequest:
    """What `segedge export --target litert|executorch` asks for.

    `input_size`: the static size (LiteRT; ExecuTorch with `static`) and the verification images' size.
    `side_range`: an ExecuTorch program's dynamic H/W bounds (default: the size divisor .. 1024).
    `layout`: NHWC gives a LiteRT file channels-last input and output. `calib`: images for int8
    (`calib_count` of them). `images`: a folder to verify on (default: the calibration images, else
    generated ones).
    """

    target: str
    output: Path
    input_size: tuple[int, int]
    precision: str = "fp32"
    static: bool = False
    side_range: tuple[int, int] | None = None
    layout: str = "NCHW"
    calib: Path | None = None
    calib_count: int = DEFAULT_CALIB_COUNT
    images: Path | None = None
    threads: int | None = None
    overwrite: bool = False


def check_torch_request(spec: Target, request: TorchTargetRequest, card: ModelCard,
                        read: list[Input]) -> None:
    """Refusals before any conversion: precision, layout, sizes, missing calibration, the output."""
    if request.precision not in spec.precisions:
        raise UsageError(f"target {spec.name} takes precision {' or '.join(spec.precisions)}, not {request.precision}")
    if request.layout == "NHWC" and spec.artefact is not Artefact.litert:
        raise UsageError(f"target {spec.name} takes NCHW input (--layout NHWC is for --target litert)")
    if request.side_range is not None and (spec.artefact is not Artefact.executorch or request.static):
        raise UsageError("--side-range bounds the dynamic sides of an ExecuTorch program (--target executorch, "
                         "without --static)")
    image_size_for(card, request.input_size)
    if request.precision == "int8" and request.calib is None:
        raise UsageError(f"--precision int8 for {spec.name} calibrates on images: give --calib DIR "
                         "(or --weights demo, which brings its data)")
    if request.output.suffix.lower() != spec.artefact_suffix:
        raise UsageError(f"target {spec.name} writes a {spec.artefact_suffix} file; the output {request.output.name} "
                         "has another suffix")
    check_outputs([request.output], read, overwrite=request.overwrite)
    ensure_writable(request.output)


def build_from_torch(model: nn.Module, card: ModelCard, request: TorchTargetRequest, reference: Runner, *,
                     read: tuple[Input, ...] = (), on_checks: Callable[[tuple[CheckReport, ...]], None] | None = None,
                     progress: Progress | None = None, repair: Repairer | None = None) -> TargetResult:
    """Convert `model` (eval mode, logits out) described by `card` into `request.target`'s artefact.

    `reference` runs `model` eagerly (the fp32 artefact is judged against it); `read`: the files the
    export reads, none of which may be its output. `repair` (int8 only): the search that chooses the
    quantizer's options, recorded in the card's calibration."""
    say = progress or (lambda _message: None)
    spec = get_target(request.target)
    if not spec.builds_from_torch:
        raise UsageError(f"target {spec.name} is built from the ONNX file (exporters.targets.build_for_target)")
    writer = _writer(spec)
    writer.require()
    check_torch_request(spec, request, card, list(read))
    size = request.input_size
    side_range = None if spec.static_shape or request.static else _side_range(request, card)
    artefact_card = card.with_overrides(
        input_size=size, dynamic=side_range is not None, precision=request.precision, layout=request.layout,
        tile_size=side_range[1] if side_range is not None else None, runtime=writer.runtime, parity={},
        calibration={}, opset=None, exporter=writer.converter,
    )
    calibration = _calibration_paths(request)
    record = {"target": spec.name, "runtime": spec.runtime, "precision": request.precision,
              "converter": writer.converter, "side_range": list(side_range) if side_range else None}
    with work_folder(f"segedge-{spec.name}-") as work:
        say(f"converting {card.name} with {writer.converter} (fp32)")
        fp32 = writer.write(model, size, side_range, request.layout, None, artefact_card, record)
        checks, main = fp32.checks, fp32
        int8: _Written | None = None
        if request.precision == "int8":
            say(f"quantizing with {writer.quantizer} on {len(calibration)} calibration images")
            inputs = [model_input(load_image(p), card, size) for p in calibration]
            options: dict[str, Any] = {}
            if repair is not None:
                options = repair(model, size, side_range, inputs)
            artefact_card = artefact_card.with_overrides(calibration={
                "method": writer.quantizer, "images": len(inputs), "folder": str(request.calib),
                **({"repair": options["repair"]} if "repair" in options else {})})
            writer.options = {k: v for k, v in options.items() if k != "repair"}
            int8 = writer.write(model, size, side_range, request.layout, inputs, artefact_card, record)
            checks, main = int8.checks, int8
        if on_checks is not None:
            on_checks(checks)
        fp32_path = _staged(work, "fp32", spec, fp32.content)
        say("verifying the fp32 artefact against PyTorch")
        verification = _verify(reference, writer.runner(fp32_path, request.threads), card, request,
                               calibration, "fp32", writer.runtime_name, "PyTorch eager (fp32)")
        if int8 is not None:
            say(f"verifying the int8 artefact against the fp32 one on {writer.runtime_name}")
            int8_path = _staged(work, "int8", spec, int8.content)
            verification = _verify(writer.runner(fp32_path, request.threads), writer.runner(int8_path, request.threads),
                                   card, request, calibration, "int8", writer.runtime_name,
                                   f"the fp32 {spec.artefact_suffix} on {writer.runtime_name}")
        final_card = artefact_card.with_overrides(parity={"reference": verification.reference,
                                                          **verification.to_dict()})
        calib_inputs = [model_input(load_image(p), card, size) for p in calibration] if int8 is not None else None
        content = writer.rewrite(main, model, size, side_range, request.layout, calib_inputs, final_card, record)
        with atomic_path(request.output, suffix=spec.artefact_suffix) as tmp:
            Path(tmp).write_bytes(content)
    notes = tuple(n for n in (spec.note, *_notes(spec, side_range, size)) if n)
    return TargetResult(
        target=spec.name, source=Path(card.name), artefacts=(request.output,), card=final_card,
        input_shape=None if side_range else ((1, *size, 3) if request.layout == "NHWC" else (1, 3, *size)),
        opset=0, precision=request.precision, checks=checks, verification=verification,
        not_built=spec.not_built, not_checked=spec.not_checked, notes=notes,
    )


# -- the two writers -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Written:
    content: bytes
    checks: tuple[CheckReport, ...]
    source: Any = None  # what was lowered (ExecuTorch: the PT2E-converted model, lowered again with the final card)


class _Writer:
    runtime: str  # the backend's name, in the card
    runtime_name: str  # in words
    converter: str
    quantizer: str
    options: dict[str, Any] = {}  # the quantizer's options a repair search chose (ExecuTorch: observer, kept; LiteRT: kept)

    def require(self) -> None: ...

    def write(self, model: nn.Module, size: tuple[int, int], side_range: tuple[int, int] | None, layout: str,
              calibration: list[np.ndarray] | None, card: ModelCard, record: dict[str, Any]) -> _Written:
        raise NotImplementedError

    def rewrite(self, written: _Written, model: nn.Module, size: tuple[int, int], side_range: tuple[int, int] | None,
                layout: str, calibration: list[np.ndarray] | None, card: ModelCard, record: dict[str, Any]) -> bytes:
        """The artefact again with `card` inside (the verification recorded)."""
        return self.write(model, size, side_range, layout, calibration, card, record).content

    def runner(self, path: Path, threads: int | None) -> Runner:
        raise NotImplementedError


class _LiteRT(_Writer):
    runtime, runtime_name = "litert", "LiteRT (XNNPACK)"
    converter, quantizer = "litert-torch", "ai-edge-quantizer static_wi8_ai8 (int8 weights and activations)"

    def require(self) -> None:
        from .litert import require_litert_torch

        require_litert_torch()

    def __init__(self) -> None:
        self._float: bytes | None = None  # litert-torch's fp32 file of this build: the int8 file quantizes it

    def write(self, model, size, side_range, layout, calibration, card, record) -> _Written:
        from .litert import calibrated, delegate_check, float_flatbuffer, static_int8, with_card

        nhwc = layout == "NHWC"
        if self._float is None:  # one build converts one model at one size and layout: once
            self._float = float_flatbuffer(model, size, nhwc=nhwc)
        content = self._float
        if calibration is not None:
            content = static_int8(content, calibrated(content, calibration, nhwc=nhwc), self.options.get("kept", ()))
        return _Written(with_card(content, card.to_json(), record), (delegate_check(content),))

    def rewrite(self, written, model, size, side_range, layout, calibration, card, record) -> bytes:
        from .litert import with_card

        return with_card(written.content, card.to_json(), record)  # metadata entries replace those of the same name

    def runner(self, path: Path, threads: int | None) -> Runner:
        from runtimes.backends.litert_session import open_litert

        return open_litert(path, threads).run


class _ExecuTorch(_Writer):
    runtime, runtime_name = "executorch", "ExecuTorch (XNNPACK)"
    converter, quantizer = "executorch", "ExecuTorch XNNPACKQuantizer (PT2E, per-channel, static int8)"

    def require(self) -> None:
        from .executorch import require_executorch

        require_executorch()

    def write(self, model, size, side_range, layout, calibration, card, record) -> _Written:
        from .executorch import dynamic_shapes, lower, quantized

        shapes = dynamic_shapes(card.size_divisor, side_range)
        source = quantized(model, size, shapes, calibration, **self.options) if calibration is not None else model
        lowered = lower(source, size, shapes, card.to_json(), record)
        return _Written(lowered.program, (lowered.check,), source)

    def rewrite(self, written, model, size, side_range, layout, calibration, card, record) -> bytes:
        from .executorch import dynamic_shapes, lower

        # The same (already quantized) model lowered again: the card is a constant method, fixed at lowering.
        return lower(written.source, size, dynamic_shapes(card.size_divisor, side_range), card.to_json(), record).program

    def runner(self, path: Path, threads: int | None) -> Runner:
        from runtimes.backends.executorch_session import open_executorch

        return open_executorch(path, threads).run


def _writer(spec: Target) -> _Writer:
    return _LiteRT() if spec.artefact is Artefact.litert else _ExecuTorch()


# -- helpers ----------------------------------------------------------------------------------------------
def _side_range(request: TorchTargetRequest, card: ModelCard) -> tuple[int, int]:
    step = max(card.size_divisor, 1)
    # torch.export specialises a dimension that may be 1, in the input or deep inside the network (a stride-32
    # feature map of a 32-pixel image): the default smallest side is 64 pixels, or two steps of the divisor.
    low = -(-max(DEFAULT_MIN_SIDE, 2 * step) // step) * step
    low, high = request.side_range or (low, max(DEFAULT_MAX_SIDE // step * step, low))
    if not 0 < low <= min(request.input_size) or max(request.input_size) > high:
        raise UsageError(f"--side-range {low}..{high} must hold the input size {request.input_size[0]}x"
                         f"{request.input_size[1]}")
    return low, high


def default_side_range(card: ModelCard, input_size: tuple[int, int]) -> tuple[int, int]:
    """The dynamic sides' bounds an ExecuTorch program gets without --side-range."""
    return _side_range(TorchTargetRequest(target="executorch", output=Path("model.pte"), input_size=input_size), card)


def _calibration_paths(request: TorchTargetRequest) -> list[Path]:
    if request.precision != "int8":
        return spread(image_files(request.calib, "calibration"), VERIFY_IMAGES) if request.calib else []
    assert request.calib is not None  # refused before otherwise
    return calibration_images(request.calib, request.calib_count)


def _staged(work: Path, name: str, spec: Target, content: bytes) -> Path:
    path = work / f"{name}{spec.artefact_suffix}"
    path.write_bytes(content)
    return path


def _verify(reference: Runner, candidate: Runner, card: ModelCard, request: TorchTargetRequest,
            calibration: list[Path], precision: str, runtime: str, reference_name: str) -> Verification:
    inputs, described = _inputs(card, request, calibration)
    return compare(reference, candidate, inputs, card=card, precision=precision, runtime=runtime,
                   reference_name=reference_name, image_source=described)


def _inputs(card: ModelCard, request: TorchTargetRequest, calibration: list[Path]) -> tuple[Iterator[np.ndarray], str]:
    size = request.input_size
    if request.images is not None:
        paths = spread(image_files(request.images, "verification"), VERIFY_IMAGES)
        described = f"{len(paths)} images of {request.images}"
    elif calibration:
        paths = spread(calibration, VERIFY_IMAGES)
        described = f"{len(paths)} of the calibration images ({request.calib})"
    else:
        return ((model_input(rgb, card, size) for rgb in synthetic_images(VERIFY_IMAGES, size)),
                f"{VERIFY_IMAGES} generated shapes images of {size[0]}x{size[1]}")
    return (model_input(load_image(p), card, size) for p in paths), described


def _notes(spec: Target, side_range: tuple[int, int] | None, size: tuple[int, int]) -> tuple[str, ...]:
    if spec.artefact is Artefact.executorch:
        shape = (f"dynamic H and W in {side_range[0]}..{side_range[1]}" if side_range is not None
                 else f"static {size[0]}x{size[1]}")
        return (f"ExecuTorch program: {shape}, batch 1 (the Predictor runs batches image by image)",)
    return (f"LiteRT file: static {size[0]}x{size[1]}, batch 1",)


def default_output(name: str, target: str) -> Path:
    spec = get_target(target)
    return Path(os.fspath(f"{name}_{spec.name}{spec.artefact_suffix}"))
