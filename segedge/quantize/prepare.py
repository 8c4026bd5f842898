"""Before quantizing a file made elsewhere: refuse what is quantized already, bring the rest to an fp32
graph at opset 13 or later, and check that graph against the user's file.

    user's file -> already int8 (QDQ / QOperator / dynamic)?  refused, naming its scheme
                -> fp16 inside?  exporters.float_source.fp32_from_fp16   (judged by the fp16 preset)
                -> opset < 13?   exporters.float_source.upgrade_opset    (judged by the fp32 preset)
                -> the quantizer's source, and one note per step for the user and the card

What was done is said (`notes`), and recorded in the result's card (`calibration["source_steps"]`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporters.float_source import PER_CHANNEL_OPSET, fp32_from_fp16, model_precision, onnx_opset, upgrade_opset
from exporters.model_file import load_model, save_model
from runtimes.model.card import ModelCard
from runtimes.errors import ExportError, UsageError
from runtimes.measure.parity import judge, preset
from runtimes.model.precision import Precision
from segedge.quantize.convert import SampleSource, compare_files

Progress = Callable[[str], None]


def refuse_quantized(source: Path, card: ModelCard, wanted: str) -> None:
    """One line for a file that is int8 already (or fp16, asked for fp16): which scheme, and what to do instead."""
    if card.precision is Precision.int8:
        scheme = card.graph_precision or f"its card says int8{f' for {card.runtime}' if card.runtime else ''}"
        raise UsageError(f"{source} is already quantized ({scheme}); quantizing it again would stack a second "
                         f"rounding on the first: quantize the fp32 model it was made from "
                         f"(segedge quantize ORIGINAL.onnx --precision {wanted})")
    if card.precision is Precision.fp16 and wanted == Precision.fp16.value:
        raise UsageError(f"{source} is already fp16 ({card.graph_precision or 'its card says so'})")


def float_source(source: Path, card: ModelCard, samples: SampleSource, overrides: dict[str, Any], work: Path,
                 progress: Progress) -> tuple[Path, tuple[str, ...]]:
    """(the fp32, opset >= 13 file to quantize: `source` itself when it is one, notes on what was done)."""
    model = load_model(source)
    found = model_precision(model)
    opset = onnx_opset(model)
    steps: list[str] = []
    if found.precision is Precision.fp16:
        progress(f"{found.scheme}: converting to fp32 before quantizing")
        model = fp32_from_fp16(model)
        steps.append(f"{found.scheme}: brought back to fp32 (fp16 weights widened, the Casts removed)")
    if 0 < opset < PER_CHANNEL_OPSET:
        progress(f"opset {opset}: upgrading to {PER_CHANNEL_OPSET} with onnx's version converter")
        model = upgrade_opset(model)
        steps.append(f"opset {opset} upgraded to {PER_CHANNEL_OPSET} by onnx.version_converter "
                     "(per-channel int8 needs DequantizeLinear's axis)")
    if not steps:
        return source, ()
    prepared = work / "fp32_source.onnx"
    save_model(model, prepared)
    progress(f"checking the fp32 graph against {source.name} on {samples[1]}")
    parity = compare_files(source, prepared, card, samples, overrides)
    judged_by = Precision.fp16 if found.precision is Precision.fp16 else Precision.fp32
    failures = judge(parity, preset(judged_by))
    if failures:
        raise ExportError(f"{source}: the fp32 graph made from it ({'; '.join(steps)}) differs from it beyond the "
                          f"{judged_by} preset ({'; '.join(failures)}); export the model in fp32 at opset "
                          f"{PER_CHANNEL_OPSET} or later and quantize that")
    checked = (f"checked against {source.name} ({judged_by} preset): max abs {parity.max_abs:.3g}, "
               f"argmax agreement {parity.argmax_agreement:.4%}")
    return prepared, (*steps, checked)
