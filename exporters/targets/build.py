"""`build_for_target`: one fp32 ONNX file in, the artefact a device runtime needs out, checked and verified.

    load -> prepare (static shape, opset bounds) -> quantize (QNN) -> checks -> on_checks(reports)
         -> write the artefact in a work folder -> verify it here against the fp32 file
         -> record the verification in its card -> move every file into place (main file last)

Nothing is written beside the output until every step has succeeded, the input file is never
an output, and a check that says the runtime would refuse the model stops the build before
writing, with the reports attached to the error (`TargetBuildError.checks`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx

from runtimes.model.card import ModelCard
from runtimes.errors import CardError, ModelFileError, UsageError
from runtimes.guards.fileio import atomic_path, ensure_writable, work_folder
from runtimes.imaging.image import load_image
from runtimes.guards.outputs import check_outputs
from runtimes.backends.onnxruntime_session import check_model_path

from ..calibration import calibration_images, image_files, spread
from ..card_io import read_card_from_proto
from ..fp16 import fp16_model
from ..int8_options import DEFAULT_CALIB_COUNT
from ..model_file import load_model
from .checks import run_check
from .images import image_size_for, model_input, synthetic_images
from .metadata import embed, target_record, to_json
from .ort_format import CONFIG_SUFFIX, write_ort
from .prepare import Prepared, prepare
from .result import CheckReport, TargetBuildError, TargetResult, Verification
from .table import Artefact, Target, get_target
from .verify import Runner, compare, ort_runner

VERIFY_IMAGES = 8
Progress = Callable[[str], None]


def build_for_target(
    fp32_onnx: str | os.PathLike[str],
    target: Target | str,
    output: str | os.PathLike[str] | None = None,
    *,
    input_size: tuple[int, int] | None = None,
    calib: str | os.PathLike[str] | None = None,
    calib_count: int = DEFAULT_CALIB_COUNT,
    card: ModelCard | None = None,
    precision: str | None = None,
    weights: str | None = None,
    images: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    on_checks: Callable[[tuple[CheckReport, ...]], None] | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    quantizer: Callable[..., dict[str, Any]] | None = None,
) -> TargetResult:
    """Build `target`'s artefact from the fp32 ONNX file `fp32_onnx` at `output`.

    `output`: the main file (its suffix is the target's: .onnx, .ort, .xml); default
    `<stem>_<target><suffix>` beside the input. `input_size`: H, W of the static shape (and of
    the verification images); default the card's. `calib`: folder of calibration images (QNN
    needs it), `calib_count` of them used. `card`: for a model without a segedge card.
    `precision`: one of the target's `precisions` (default its `default_precision`); `weights`:
    one of its quantized `weight_types` (QNN: uint8, the default, or int8). `images`:
    folder to verify on (default the calibration images, else generated ones). `on_checks` is
    called with the check reports before anything is written. `overwrite`: replace existing files
    that segedge did not write (`runtimes.guards.outputs.check_outputs`); the input is never an output.
    `quantizer`: what quantizes for QNN in place of `qnn.quantize_for_qnn` (same arguments; segedge's
    repair search, `segedge.quantize.adapters.qnn_qdq.repairing_quantizer`).
    """
    say = progress or (lambda _message: None)
    spec = get_target(target)
    if not spec.builds_from_onnx:  # a folder or a Core ML package: writers of their own
        raise UsageError(f"target {spec.name} has its own writer: `segedge export MODEL --target {spec.name}` builds it")
    source = check_model_path(fp32_onnx)
    precision = _precision(spec, precision)
    weight_type = _weights(spec, weights)
    model = load_model(source)
    card = card or read_card_from_proto(model)
    size = _input_size(input_size, card, model)
    out = _output(output, source, spec, overwrite)
    view = card or _stand_in_card(model, source)  # normalisation for verification inputs only
    image_size_for(view, size)  # refuses sizes the model does not take, before any work
    calibration_paths = _calibration(spec, calib, calib_count, card, model)

    with work_folder("segedge-target-") as work:
        say(f"preparing the graph for {spec.name}")
        prepared = prepare(model, spec, size)
        graph_path, calibration = _graph(spec, prepared, precision, weight_type, work, calibration_paths, card, size,
                                         say, quantizer)
        if calibration is not None:
            calibration["folder"] = str(calib)
        say(f"checking operators: {', '.join(c.value for c in spec.checks)}")
        checks = tuple(run_check(check, graph_path) for check in spec.checks)
        if on_checks is not None:
            on_checks(checks)
        _refuse_if_blocked(spec, checks)
        graph = onnx.load(os.fspath(graph_path))
        record = target_record(spec, graph, precision=precision, checks=checks, calibration=calibration)
        artefact_card = _artefact_card(card, spec, prepared, size, precision, calibration)
        say(f"writing the {spec.artefact.value} artefact")
        staged = _write(spec, graph, artefact_card, record, work, out, precision)
        say("verifying the artefact against the fp32 file")
        verification, note = _verify(spec, source, staged[-1][0], view, size, precision, images, calib,
                                     calibration_paths, threads)
        if artefact_card is not None and verification is not None:
            artefact_card = artefact_card.with_overrides(parity=_parity(verification, source))
            # Same graph, the card now holding the verification: the writers are deterministic.
            staged = _write(spec, graph, artefact_card, record, work, out, precision)
        _move_into_place(staged)
    notes = (*prepared.notes, *_notes(spec, calibration), *((note,) if note else ()))
    return TargetResult(
        target=spec.name, source=source, artefacts=tuple(final for _, final in reversed(staged)),
        card=artefact_card, input_shape=prepared.input_shape, opset=prepared.opset, precision=precision,
        checks=checks, verification=verification, not_built=spec.not_built, not_checked=spec.not_checked,
        notes=notes,
    )


def default_output(source: str | os.PathLike[str], target: Target | str) -> Path:
    spec = get_target(target)
    source = Path(source)
    return source.with_name(f"{source.stem}_{spec.name}{spec.artefact_suffix}")


def sidecars(output: Path, target: Target) -> tuple[Path, ...]:
    """The files written beside the main one."""
    if target.artefact is Artefact.ort_format:
        return (output.with_suffix(CONFIG_SUFFIX),)
    if target.artefact is Artefact.openvino_ir:
        return (output.with_suffix(".bin"),)
    return ()


# -- before any work ------------------------------------------------------------------------------
def _precision(target: Target, precision: str | None) -> str:
    chosen = precision or target.default_precision
    if chosen not in target.precisions:
        raise UsageError(f"target {target.name} takes precision {' or '.join(target.precisions)}, not {chosen}")
    return chosen


def _weights(target: Target, weights: str | None) -> str | None:
    if not target.weight_types:
        if weights is not None:
            raise UsageError(f"target {target.name} does not quantize: weights={weights!r} does not apply")
        return None
    chosen = weights or target.weight_types[0]
    if chosen not in target.weight_types:
        raise UsageError(f"target {target.name} takes {' or '.join(target.weight_types)} weights, not {chosen}")
    return chosen


def _input_size(input_size: tuple[int, int] | None, card: ModelCard | None, model: onnx.ModelProto) -> tuple[int, int]:
    if input_size is not None:
        if len(input_size) != 2 or not all(isinstance(v, int) and 0 < v <= 16384 for v in input_size):
            raise UsageError(f"input size must be two sides in 1..16384, got {input_size}")
        return (int(input_size[0]), int(input_size[1]))
    if card is not None:
        return card.input_size
    dims = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else []
    if len(dims) == 4 and all(d.HasField("dim_value") for d in dims[2:]):
        return (int(dims[2].dim_value), int(dims[3].dim_value))
    raise UsageError("the model has no card and a dynamic input: give input_size (--input-size HxW)")


def _output(output: str | os.PathLike[str] | None, source: Path, target: Target, overwrite: bool) -> Path:
    out = Path(output) if output is not None else default_output(source, target)
    if out.suffix.lower() != target.artefact_suffix:
        raise UsageError(f"target {target.name} writes a {target.artefact_suffix} file; "
                         f"the output {out.name} has another suffix")
    # Never the input (by any name); an existing file segedge did not write only with `overwrite`.
    check_outputs((out, *sidecars(out, target)), [("the input model", source)], overwrite=overwrite)
    ensure_writable(out)
    return out


def _stand_in_card(model: onnx.ModelProto, source: Path) -> ModelCard:
    """Default normalisation for a model without a card: both sides of a comparison get the same input."""
    dims = model.graph.output[0].type.tensor_type.shape.dim if model.graph.output else []
    classes = dims[1].dim_value if len(dims) > 1 and dims[1].HasField("dim_value") else 2
    return ModelCard.for_foreign_model(source.stem or "model", max(int(classes), 1))


def _calibration(target: Target, calib: str | os.PathLike[str] | None, count: int, card: ModelCard | None,
                 model: onnx.ModelProto) -> list[Path]:
    if target.artefact is not Artefact.qnn_qdq:  # nothing to calibrate: the images only verify
        return spread(image_files(Path(calib), "calibration"), count) if calib is not None else []
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        raise UsageError(f"target {target.name} quantizes the model: give it the fp32 file, not a quantized one")
    if calib is None:
        raise UsageError(f"target {target.name} quantizes to {target.activations} activations: "
                         "it needs calibration images (--calib DIR)")
    if card is None:
        raise CardError("the model has no segedge card, so its input normalisation (which calibration must "
                        "match) is unknown: give a card (--mean/--std/--classes)")
    return calibration_images(Path(calib), count)


# -- the graph, its checks and the artefact ------------------------------------------------------
def _graph(target: Target, prepared: Prepared, precision: str, weights: str | None, work: Path,
           calibration_paths: list[Path],
           card: ModelCard | None, size: tuple[int, int], say: Progress,
           quantizer: Callable[..., dict[str, Any]] | None = None) -> tuple[Path, dict[str, Any] | None]:
    """The ONNX graph the writer starts from (what the checks look at), and calibration facts if quantized."""
    graph = prepared.model
    if precision == "fp16" and target.artefact is Artefact.onnx:
        graph = fp16_model(graph)
    path = work / "graph.onnx"
    onnx.save(graph, os.fspath(path))
    if target.artefact is not Artefact.qnn_qdq:
        return path, None
    from .qnn import quantize_for_qnn

    assert card is not None and target.activations is not None and weights is not None  # refused before otherwise
    say(f"quantizing for QNN ({target.activations} activations, {weights} weights) on {len(calibration_paths)} "
        "calibration images")
    quantized = work / "qdq.onnx"
    facts = (quantizer or quantize_for_qnn)(path, quantized, calibration_paths, card, size=size,
                                            activations=target.activations, weights=weights, workdir=work)
    return quantized, facts


def _refuse_if_blocked(target: Target, checks: tuple[CheckReport, ...]) -> None:
    blocked = [row for report in checks if report.blocking for row in report.unsupported]
    if blocked:
        listed = ", ".join(f"{row.op_type} ({row.node})" for row in blocked[:5])
        more = f" and {len(blocked) - 5} more" if len(blocked) > 5 else ""
        raise TargetBuildError(f"{target.runtime} cannot run {len(blocked)} node(s) of this model: {listed}{more}",
                               checks)


def _artefact_card(card: ModelCard | None, target: Target, prepared: Prepared, size: tuple[int, int],
                   precision: str, calibration: dict[str, Any] | None) -> ModelCard | None:
    if card is None:
        return None
    return card.with_overrides(
        dynamic=not target.static_shape, input_size=size if target.static_shape else card.input_size,
        precision=own_precision(precision, card), opset=prepared.opset, calibration=calibration or {}, parity={},
    )


def own_precision(precision: str, card: ModelCard) -> str:
    """The precision a target's file really computes in: the one asked for, but an fp16-inside model made
    elsewhere (its card read from the graph) stays fp16 at the target's default fp32 and is judged so."""
    return card.precision.value if precision == "fp32" and card.precision.value == "fp16" else precision


def _write(target: Target, graph: onnx.ModelProto, card: ModelCard | None, record: dict[str, Any], work: Path,
           output: Path, precision: str) -> list[tuple[Path, Path]]:
    """Write the artefact into `work`; (staged file, final path) pairs, the main file last."""
    staged = work / "artefact"
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir()
    if target.artefact is Artefact.openvino_ir:
        from .openvino_ir import write_ir

        plain = _copied(graph)
        del plain.metadata_props[:]  # the card and record go to rt_info, not through OpenVINO's reading of metadata
        rt_info = {"target": to_json(record), **({"card": card.to_json()} if card is not None else {})}
        xml, binary = write_ir(_saved(plain, staged / "ir-input.onnx"), staged / "model.xml",
                               compress_to_fp16=precision == "fp16", rt_info=rt_info)
        return [(binary, output.with_suffix(".bin")), (xml, output)]
    model = embed(_copied(graph), card, record)
    if target.artefact is Artefact.ort_format:
        assert target.ort_style is not None
        source = _saved(model, staged / "model.onnx")
        ort, config = staged / "model.ort", staged / f"model{CONFIG_SUFFIX}"
        write_ort(source, ort, config, style=target.ort_style, platform=target.ort_platform, shipped_name=output.name)
        return [(config, output.with_suffix(CONFIG_SUFFIX)), (ort, output)]
    return [(_saved(model, staged / "model.onnx"), output)]


def _move_into_place(staged: list[tuple[Path, Path]]) -> None:
    """Each file atomically, sidecars first, the main file last.

    An earlier main file at the output goes first: an IR .xml names its .bin's byte offsets, so an
    old .xml beside a new .bin (an interrupt between two renames) would load and compute garbage.
    Whatever moment an interrupt comes, a main file in place has its own companions.
    """
    main = staged[-1][1]
    if len(staged) > 1 and main.exists():
        main.unlink()
    for staged_path, final in staged:
        with atomic_path(final, suffix=final.suffix) as tmp:
            shutil.copyfile(staged_path, tmp)


def _saved(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, os.fspath(path))
    return path


def _copied(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


# -- verification ----------------------------------------------------------------------------------
def _verify(target: Target, source: Path, artefact: Path, card: ModelCard, size: tuple[int, int], precision: str,
            images: str | os.PathLike[str] | None, calib: str | os.PathLike[str] | None,
            calibration_paths: list[Path], threads: int | None) -> tuple[Verification | None, str]:
    try:
        reference = ort_runner(source, threads)
    except ModelFileError as exc:
        return None, f"not verified: the fp32 file does not run on ONNX Runtime's CPU provider ({exc})"
    candidate, runtime = _runner(target, artefact, threads)
    inputs, described = _inputs(card, size, images, calib, calibration_paths)
    return compare(reference, candidate, inputs, card=card, precision=own_precision(precision, card), runtime=runtime,
                   reference_name=f"{source.name} on ONNX Runtime CPU", image_source=described), ""


def _runner(target: Target, artefact: Path, threads: int | None) -> tuple[Runner, str]:
    if target.artefact is Artefact.openvino_ir:
        from .openvino_ir import ir_runner

        return ir_runner(artefact, threads), "OpenVINO CPU plugin, f32"
    return ort_runner(artefact, threads), "ONNX Runtime CPU provider"


def _inputs(card: ModelCard, size: tuple[int, int], images: str | os.PathLike[str] | None,
            calib: str | os.PathLike[str] | None, calibration_paths: list[Path]):
    if images is not None:
        paths = spread(image_files(Path(images), "verification"), VERIFY_IMAGES)
        described = f"{len(paths)} images of {images}"
    elif calibration_paths:
        paths = spread(calibration_paths, VERIFY_IMAGES)
        described = f"{len(paths)} of the calibration images ({calib})"
    else:
        generated = synthetic_images(VERIFY_IMAGES, size)
        return (model_input(rgb, card, size) for rgb in generated), \
            f"{VERIFY_IMAGES} generated shapes images of {size[0]}x{size[1]}"
    return (model_input(load_image(p), card, size) for p in paths), described


def _parity(verification: Verification, source: Path) -> dict[str, Any]:
    return {"reference": "fp32", "reference_file": source.name, **verification.to_dict()}


def _notes(target: Target, calibration: dict[str, Any] | None) -> tuple[str, ...]:
    notes = [target.note] if target.note else []
    if target.ort_style is not None:
        notes.append(f"ORT format, {target.ort_style.value} optimisation style, target platform "
                     f"{target.ort_platform or 'any'}")
    if calibration is not None:
        notes.append(f"QDQ: {calibration['activations']} activations, {calibration['weights']} weights, "
                     f"calibrated on {calibration['images']} images ({calibration['method']})")
    return tuple(notes)
