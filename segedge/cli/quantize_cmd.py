"""`segedge quantize`: fp16 or int8 (or the fastest within an accuracy budget), with the cost measured."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from exporters.int8_options import Method
from runtimes.model.onnx_info import model_megabytes
from runtimes.errors import ParityError, UsageError
from runtimes.backends.selection import Runtime
from segedge.quantize.adapters import Backend
from segedge.cli.app import app, err, out, print_json, probe_if_isolated, with_progress
from segedge.cli.options import (Budget, Calib, CardOptions, Data, DataLimit, ForRuntime, Isolate, Json, Overwrite,
                                 QuantizeTo, calib_count_option, card_options)

WORST_SHOWN = 10


@app.command("quantize")
@card_options
def quantize_command(
    model: Path = typer.Argument(..., help="The fp32 ONNX model (exported by segedge: its card gives the normalisation)."),
    precision: Optional[QuantizeTo] = typer.Option(None, "--precision", help="fp16, int8, or auto (the fastest within --budget; int8 that misses it is repaired first). Required unless --sensitivity."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write the model (default: beside MODEL, <name>_<precision>.onnx; --for openvino: <name>_int8.xml + .bin)."),
    for_runtime: ForRuntime = Runtime.onnxruntime,
    calib: Calib = None,
    calib_count: int = calib_count_option(),
    method: Method = typer.Option(Method.minmax, "--method", help="How int8 activation ranges are chosen from the calibration images."),
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="int8 weights: one scale per output channel (default) or per tensor."),
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", help="Node kept in float (repeat, or comma-separate); --debug names the worst."),
    budget: Budget = 1.0,
    data: Data = None,
    data_limit: DataLimit = None,
    debug: bool = typer.Option(False, "--debug", help="int8: SQNR per quantized tensor; names the nodes that lose most."),
    sensitivity: bool = typer.Option(False, "--sensitivity", help="Rank layers by what keeping each alone in higher precision recovers (mIoU with labels, else argmax agreement); writes no model."),
    rank_for: Optional[list[Backend]] = typer.Option(None, "--rank-for", help="--sensitivity: the quantizer(s) to rank for (repeat): onnxruntime (QDQ, float layers), openvino (NNCF, float layers), qnn (uint16 activations, 16-bit weight layers), executorch (PT2E XNNPACKQuantizer on the PyTorch model the card records, float layers), litert (ai-edge-quantizer on that model's float .tflite, float ops). Default: --for's."),
    blocks: int = typer.Option(24, "--sensitivity-blocks", min=1, max=1000, help="--sensitivity: at most this many variants; a larger graph is ranked per block of consecutive layers."),
    as_json: Json = False,
    isolate: Isolate = False,
    overwrite: Overwrite = False,
    card: CardOptions = CardOptions(),
) -> None:
    """Convert an fp32 model to fp16 or int8, measure what it costs against fp32, record it in the card."""
    from segedge.quantize import QuantizeRequest, run_quantize

    probe_if_isolated(isolate, model)
    if sensitivity:
        return sensitivity_command(model, rank_for or [Backend(for_runtime.value)], calib, calib_count, method,
                                   per_channel, split_names(exclude), budget, data, data_limit, blocks, card, as_json)
    if precision is None:
        raise UsageError("quantize needs --precision fp16, int8 or auto (or --sensitivity to rank layers)")
    request = QuantizeRequest(
        model=model, precision=precision.value, output=output, calib=calib, calib_count=calib_count,
        method=method, per_channel=per_channel, exclude=split_names(exclude), budget=budget, data=data,
        data_limit=data_limit, debug=debug, overwrite=overwrite, card_overrides=card.overrides(), runtime=for_runtime,
    )
    result = with_progress("quantizing", lambda progress: run_quantize(request, progress))
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    for note in result.notes:
        err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)
    else:
        print_result(result)
    if not result.passed:
        raise preset_failure(result.path, result.card.precision, result.failures)


def preset_failure(path: Path, precision: str, failures: Sequence[str]) -> ParityError:
    """The one line for a written file that fails its precision's preset; for int8, the way to repair it."""
    repair = (" (--precision auto repairs int8 within --budget mIoU points, keeping in float what costs most:"
              " docs/precision-repair.md)" if precision == "int8" else "")
    return ParityError(f"wrote {path}, but it fails the {precision} preset: {'; '.join(failures)}{repair}")


def sensitivity_command(model: Path, backends: list[Backend], calib: Path | None, calib_count: int, method: Method,
                        per_channel: bool, exclude: tuple[str, ...], budget: float, data: Path | None,
                        data_limit: int | None, blocks: int, card: CardOptions, as_json: bool) -> None:
    from segedge.quantize.sensitivity_run import SensitivityRequest, run_sensitivity

    request = SensitivityRequest(model, tuple(dict.fromkeys(backends)), calib, calib_count, data, data_limit, method,
                                 per_channel, exclude, budget, blocks, card.overrides())
    result = with_progress("ranking layers", lambda progress: run_sensitivity(request, progress))
    if as_json:
        print_json(result)
        return
    for ranking in result.rankings:
        print_sensitivity(ranking, result.images)


def print_sensitivity(ranking, images: str) -> None:
    base = ranking.base_measured
    table = Table(title=f"{ranking.runtime}: each {'block' if ranking.per_block else 'layer'} alone in {ranking.higher} "
                        f"(plain int8 loses {base.lost:.2f} points) on {images}", title_justify="left")
    for column in ("#", "layer" if not ranking.per_block else "block", "lost (points)", "recovered", "argmax agree", "mIoU"):
        table.add_column(column, justify="left" if column in ("layer", "block") else "right")
    for i, row in enumerate(ranking.rows[:WORST_SHOWN * 2], 1):
        m = row.measured
        table.add_row(str(i), escape(row.unit.name), f"{m.lost:.2f}", f"{row.recovered:+.2f}", f"{m.argmax_agreement:.4%}",
                      _num(m.miou, ".4f"))
    out.print(table)
    err.print(f"cost: {ranking.cost}", markup=False)


def split_names(values: list[str] | None) -> tuple[str, ...]:
    return tuple(name.strip() for value in values or () for name in value.split(",") if name.strip())


def print_result(result) -> None:
    card, a = result.card, result.agreement
    size_mb = model_megabytes(result.path)
    facts = ""
    if card.calibration:
        c = card.calibration
        facts = (f", {c['quantized_convs']}/{c['convs']} convs int8, {c['images']} calibration images ({c['method']}, "
                 f"{'per-channel' if c['per_channel'] else 'per-tensor'}, {c['activations']} activations"
                 f"{', 7-bit weights: no VNNI here' if c.get('reduce_range') else ''})"
                 + (f", for {card.runtime}" if card.runtime else ""))
    err.print(f"[bold]{escape(str(result.path))}[/]  {card.precision}, {size_mb:.2f} MB{escape(facts)}  ({result.seconds:.1f} s)")
    if result.trials:
        print_trials(result.trials, result.card.precision)
    table = Table(title=f"{card.precision} vs fp32 on {a.source}", title_justify="left")
    for column in ("argmax agree", "min class IoU", "SQNR dB", "max abs", "mIoU fp32", f"mIoU {card.precision}", "drop (points)", "status"):
        table.add_column(column, justify="right")
    drop = a.miou_drop_points
    table.add_row(
        f"{a.argmax_agreement:.4%}", f"{a.min_class_iou:.4f}", _num(a.sqnr_db, ".1f"), _num(a.max_abs, ".3g"),
        _num(a.miou_reference, ".4f"), _num(a.miou, ".4f"), _num(drop, ".2f"),
        "[green]ok[/]" if result.passed else f"[red]{'; '.join(result.failures)}[/]",
    )
    out.print(table)
    if result.layers:
        print_layers(result.layers)


def print_trials(trials, chosen: str) -> None:
    table = Table(title="precision search (fastest within budget wins)", title_justify="left")
    for column in ("precision", "float nodes", "lost (points)", "argmax agree", "mIoU", "p50 ms", "MB", "within budget"):
        table.add_column(column, justify="left" if column in ("precision", "float nodes") else "right")
    for t in trials:
        table.add_row(
            f"int8, repaired ({t.step})" if t.step else t.precision, ", ".join(t.excluded) or "-", f"{t.lost_points:.2f}", f"{t.agreement.argmax_agreement:.4%}",
            _num(t.agreement.miou, ".4f"), f"{t.p50_ms:.1f}", f"{t.size_mb:.2f}", "yes" if t.within_budget else "no",
        )
    out.print(table)
    err.print(f"chose {chosen}", markup=False)


def print_layers(layers) -> None:
    table = Table(title=f"int8 tensors losing most (of {len(layers.activations)}; {layers.images} images)", title_justify="left")
    for column in ("node", "op", "tensor", "lost dB", "SQNR vs fp32 dB"):
        table.add_column(column, justify="left" if column in ("node", "op", "tensor") else "right")
    for row in layers.activations[:WORST_SHOWN]:
        table.add_row(row.node, row.op_type, row.tensor, f"{row.lost_db:.1f}", f"{row.vs_fp32_db:.1f}")
    out.print(table)
    worst_weight = layers.weights[0] if layers.weights else None
    if worst_weight:
        err.print(f"lowest weight SQNR: {worst_weight.weight} ({worst_weight.node}) {worst_weight.sqnr_db:.1f} dB", markup=False)
    nodes = layers.worst_nodes(3)
    if nodes:
        err.print("to keep the worst in float: " + " ".join(f"--exclude {n}" for n in nodes))


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)
