"""`segedge info`: what an ONNX file is and what this machine can run it on."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from runtimes.onnx_info import describe_model
from runtimes.providers import available

from segedge.cli.app import app, out, probe_if_isolated
from segedge.cli.options import Isolate, Json


@app.command("info")
def info_command(
    model: Path = typer.Argument(..., help="An ONNX model file."),
    as_json: Json = False,
    isolate: Isolate = False,
) -> None:
    """Show the model card, inputs/outputs, opset, file size and the available providers."""
    probe_if_isolated(isolate, model)
    info = describe_model(model)
    data = {
        "path": str(info.path),
        "size_mb": round(info.size_mb, 3),
        "opset": info.opset,
        "producer": info.producer,
        "inputs": list(info.inputs),
        "outputs": list(info.outputs),
        "available_providers": available(),
        "card": info.card.to_dict() if info.card else None,
    }
    if as_json:
        out.print_json(json.dumps(data))
        return
    out.print(f"[bold]{info.path}[/]  {info.size_mb:.1f} MB  opset {info.opset or '?'}  ({info.producer})")
    for line in info.inputs:
        out.print(f"  input   {line}")
    for line in info.outputs:
        out.print(f"  output  {line}")
    out.print(f"  providers available: {', '.join(available())}")
    card = info.card
    if card is None:
        out.print("  no segedge model card: give mean/std/classes as options when predicting")
        return
    out.print(f"  card: {card.name} ({card.architecture}), {card.num_classes} classes, {card.precision}, "
              f"{card.color_order} mean={card.mean} std={card.std}, size divisor {card.size_divisor}, "
              f"valid margin {card.valid_margin}, exported by segedge {card.segedge_version} ({card.exporter}, opset {card.opset})")
    out.print(f"  classes: {', '.join(card.classes)}")
    parity = card.parity or {}
    for row in parity.get("sizes", []):
        out.print(f"  parity at export {row['size'][0]}x{row['size'][1]}: max abs {row['max_abs']:.2e} "
                  f"(range {row['logits_range']:.1f}), argmax agreement {row['argmax_agreement']:.4%}")
    if "preset" in parity:  # a converted model: measured against the file it was made from
        out.print(f"  {_converted_parity(parity)}")
    if card.calibration:
        calib = card.calibration
        out.print("  calibration: " + ", ".join(f"{k} {v}" for k, v in calib.items() if not isinstance(v, (list, dict))))


def _converted_parity(parity: dict) -> str:
    verdict = "passed" if parity.get("passed") else "FAILED"
    line = (f"parity vs {parity.get('reference', 'fp32')} ({parity['preset']} preset, {verdict}; {parity.get('source', '?')}): "
            f"argmax agreement {parity['argmax_agreement']:.4%}, min class IoU {parity.get('min_class_iou', float('nan')):.4f}")
    if parity.get("miou") is not None:
        line += f", mIoU {parity['miou']:.4f} ({parity['miou_drop_points']:.2f} points lost)"
    return line
