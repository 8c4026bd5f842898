"""`segedge info`: what an ONNX file is, what segedge read and inferred of it, what this machine can run it on."""

from __future__ import annotations

from pathlib import Path

import typer

from runtimes.onnx_info import ModelInfo, describe_model
from runtimes.providers import available
from segedge.cli.app import app, out, print_json, probe_if_isolated
from segedge.cli.options import CardOptions, Isolate, Json, card_options


@app.command("info")
@card_options
def info_command(
    model: Path = typer.Argument(..., help="An ONNX model file."),
    as_json: Json = False,
    isolate: Isolate = False,
    card: CardOptions = CardOptions(),
) -> None:
    """Show the model card (stored, or read from the graph and probed), inputs/outputs, opset, size, providers."""
    probe_if_isolated(isolate, model)
    info = describe_model(model, card.overrides())
    if as_json:
        print_json(_WithProviders(info))
        return
    # markup=False everywhere: names in a model are printed verbatim, brackets and all.
    say = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731
    opsets = ", ".join(f"{domain} {version}" for domain, version in info.opset.items()) if info.opset else None
    made = "; ".join(part for part in (f"opset {opsets}" if opsets else "", info.producer) if part)
    say(f"{info.path}  {info.size_mb:.1f} MB  {info.format}{f'  ({made})' if made else ''}")
    for tensor in info.inputs:
        say(f"  input   {tensor.describe()}")
    for tensor in info.outputs:
        say(f"  output  {tensor.describe()}")
    say(f"  runs on: {info.runs_on}; providers available: {', '.join(available())}")
    say(f"  takes: {info.shape_constraints}")
    if info.target is not None:
        checks = "; ".join(f"{c['check']}: {c['falling_back']} of {c['nodes']} nodes fall back" for c in info.target.get("checks", [])
                           if c.get("ran"))
        say(f"  made for target {info.target['target']} ({info.target.get('runtime')}, {info.target.get('precision')}, "
            f"opset {info.target.get('opset')}){f'; {checks}' if checks else ''}")
    resolved = info.card
    if info.stored_card and resolved.exporter is None:  # written by quantize / export --target from a foreign file
        say(f"  card: {resolved.name}, {resolved.num_classes} classes, {resolved.precision}; made by segedge from "
            "a model exported elsewhere")
    elif info.stored_card:
        say(f"  card: {resolved.name} ({resolved.architecture}), {resolved.num_classes} classes, {resolved.precision}, "
            f"exported by segedge {resolved.segedge_version} ({resolved.exporter}, opset {resolved.opset})")
    else:
        say("  no segedge card: read from the graph and probed (source of each fact in brackets; options override)")
    facts = {fact.name: fact for fact in info.facts}
    for fact in info.facts:
        if fact.value is None or fact.name == "graph_precision" or (fact.name == "large_image" and resolved.dynamic):
            continue
        value = ", ".join(map(str, fact.value)) if isinstance(fact.value, tuple) else fact.value
        if fact.name == "precision" and facts.get("graph_precision") and facts["graph_precision"].value:
            value, fact = facts["graph_precision"].value, facts["graph_precision"]  # the scheme, and the ops that say it
        say(f"    {fact.name if fact.name != 'graph_precision' else 'precision':<14} {value}  ({fact.source})")
    if info.static_batch is not None and "batch" not in facts:
        say(f"    static batch   {info.static_batch}  (graph)")
    if not resolved.dynamic:
        say(f"  larger images: {_large_image_policy(resolved)}")
    parity = resolved.parity or {}
    for row in parity.get("sizes", []):
        say(f"  parity at export {row['size'][0]}x{row['size'][1]}: max abs {row['max_abs']:.2e} "
            f"(range {row['logits_range']:.1f}), argmax agreement {row['argmax_agreement']:.4%}")
    if "preset" in parity:  # a converted model: measured against the file it was made from
        say(f"  {_converted_parity(parity)}")
    if resolved.calibration:
        calib = resolved.calibration
        say("  calibration: " + ", ".join(f"{k} {v}" for k, v in calib.items() if not isinstance(v, (list, dict))))
        for key, what in (("int8_ops", "runs in int8"), ("float_ops", "stays float")):
            if calib.get(key):
                say(f"  {what}: " + ", ".join(f"{op} {n}" for op, n in calib[key].items()))
    if resolved.training:  # demo weights: how segedge made them, and where their data comes from
        record = resolved.training
        data = record.get("dataset", {})
        say(f"  trained by segedge: recipe {record.get('recipe')}, {data.get('name')} v{data.get('version')} "
            f"({data.get('train')} train / {data.get('val')} held-out images), held-out mIoU {record.get('held_out_miou')}")


def _large_image_policy(card) -> str:
    size = f"{card.input_size[0]} x {card.input_size[1]}"
    if card.large_image == "resize":
        return f"resized to fit {size} (--large-image resize: the model judges the whole image)"
    return f"cut into {size} tiles (--large-image tile; give --large-image resize for models that judge the whole image)"


class _WithProviders:
    """`--json`: the model's facts and the providers this machine has."""

    def __init__(self, info: ModelInfo) -> None:
        self.info = info

    def to_dict(self) -> dict:
        return {**self.info.to_dict(), "available_providers": available()}


def _converted_parity(parity: dict) -> str:
    verdict = "passed" if parity.get("passed") else "FAILED"
    line = (f"parity vs {parity.get('reference', 'fp32')} ({parity['preset']} preset, {verdict}; {parity.get('source', '?')}): "
            f"argmax agreement {parity['argmax_agreement']:.4%}, min class IoU {parity.get('min_class_iou', float('nan')):.4f}")
    if parity.get("miou") is not None:
        line += f", mIoU {parity['miou']:.4f} ({parity['miou_drop_points']:.2f} points lost)"
    return line
