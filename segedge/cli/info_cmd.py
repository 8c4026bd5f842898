"""`segedge info`: what an ONNX file is, what segedge read and inferred of it, what this machine can run it on."""

from __future__ import annotations

from pathlib import Path

import typer

from runtimes.model.onnx_info import ModelInfo, describe_model
from runtimes.backends.onnxruntime_providers import available
from runtimes.model.web_folder import read_manifest
from segedge.cli.app import app, out, print_json, probe_if_isolated
from segedge.cli.options import CardOptions, Isolate, Json, card_options


@app.command("info")
@card_options
def info_command(
    model: Path = typer.Argument(..., help="A model file (ONNX, ORT format, OpenVINO IR, Core ML .mlpackage) or a web folder from --target web."),
    as_json: Json = False,
    isolate: Isolate = False,
    card: CardOptions = CardOptions(),
) -> None:
    """Show the model card (stored, or read from the graph and probed), inputs/outputs, opset, size, providers."""
    # markup=False everywhere: names in a model are printed verbatim, brackets and all.
    say = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731
    if model.suffix.lower() == ".mlpackage":
        _mlpackage_info(model, as_json, say)
        return
    web = read_manifest(model) if model.is_dir() else None
    if web is not None:  # a web export: its model, and what runs it
        model = model / str(web.get("model", "model.onnx"))
    probe_if_isolated(isolate, model)
    info = describe_model(model, card.overrides())
    if as_json:
        print_json(_WithProviders(info, web))
        return
    if web is not None:
        runtime = web.get("onnxruntime_web", {})
        say(f"{model.parent}  web folder (segedge export --target web): {model.name} + card.json for "
            f"{runtime.get('package', 'onnxruntime-web')} {runtime.get('version', '?')} (WASM), {web.get('precision')}")
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
    """`--json`: the model's facts and the providers this machine has (and a web folder's manifest)."""

    def __init__(self, info: ModelInfo, web: dict | None = None) -> None:
        self.info = info
        self.web = web

    def to_dict(self) -> dict:
        return {**self.info.to_dict(), "available_providers": available(), **({"web": self.web} if self.web else {})}


def _mlpackage_info(path: Path, as_json: bool, say) -> None:
    """A Core ML package: format, card, input and output shapes, operators (read, not run: Core ML needs a Mac)."""
    from exporters.targets.coreml_quiet import can_predict
    from exporters.targets.mlpackage_spec import read_mlpackage

    info = read_mlpackage(path)
    runs, why = can_predict()
    if as_json:
        print_json(_Dict({**info.to_dict(), "runs_here": runs, "why_not": why}))
        return
    say(f"{info.path}  {info.size_mb:.1f} MB  {info.format}  (specification {info.specification_version}, "
        f"opset {info.opset or '?'})")
    for tensor in info.inputs:
        say(f"  input   {tensor.describe()}")
    for tensor in info.outputs:
        say(f"  output  {tensor.describe()}")
    say(f"  runs here: {'yes' if runs else 'no: ' + why}")
    if info.target is not None:
        say(f"  made for target {info.target.get('target')} ({info.target.get('precision')}, "
            f"deployment {info.target.get('deployment')})")
    if info.card is not None:
        c = info.card
        say(f"  card: {c.name} ({c.architecture}), {c.num_classes} classes ({', '.join(c.classes)}), {c.precision}, "
            f"colour order {c.color_order}, mean {c.mean}, std {c.std}, scale {c.scale:g} (applied inside the model)")
    else:
        say("  no segedge card in the package's user metadata")
    say("  operators: " + ", ".join(f"{op} {n}" for op, n in info.operators.items()))


class _Dict:
    def __init__(self, value: dict) -> None:
        self.value = value

    def to_dict(self) -> dict:
        return self.value


def _converted_parity(parity: dict) -> str:
    verdict = "passed" if parity.get("passed") else "FAILED"
    line = (f"parity vs {parity.get('reference', 'fp32')} ({parity['preset']} preset, {verdict}; {parity.get('source', '?')}): "
            f"argmax agreement {parity['argmax_agreement']:.4%}, min class IoU {parity.get('min_class_iou', float('nan')):.4f}")
    if parity.get("miou") is not None:
        line += f", mIoU {parity['miou']:.4f} ({parity['miou_drop_points']:.2f} points lost)"
    return line
