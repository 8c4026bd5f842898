"""Cards for files that have none: what a foreign model's graph tells, read once, on load.

A segedge file carries its card. A model exported elsewhere (mmseg/mmdeploy, PaddleSeg, Hugging
Face, smp, a user's own `torch.onnx.export`) does not, so the card is built from what the file
says, each fact with where it came from (Polygraphy's `inspect model` in spirit: read, say what
was found, never guess silently):

- "graph": the input's layout (NCHW or NHWC), whether H and W are static, the element type, the
  output's kind (an integer output or an ArgMax: labels; a Sigmoid: a probability; a Softmax:
  probabilities; else logits, or one logit channel), the class count, the deepest stride;
- "probe": the model run on small inputs: the output's resolution (the same as the input, 1/k of
  it like SegFormer's 1/4, or a valid-mode margin) and the smallest size divisor it accepts;
- "option": what the user said (`--mean`, `--size-divisor`, ...; the Predictor's keywords);
- "default": what nothing said (ImageNet mean/std, 512 x 512 for timing a dynamic model).

The options always win, and a stored card is taken as it is (plus the options).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .card import ModelCard
from ..errors import CardError, ModelFileError
from .graph_summary import GraphSummary, read_graph_summary
from ..imaging.palette import default_class_names, default_palette
from .precision import read_precision
from ..backends.messages import runtime_reason

RawRun = Callable[[np.ndarray], np.ndarray]  # an N x 3 x H x W float32 batch -> the model's raw output
DEFAULT_INPUT_SIZE = (512, 512)
MAX_PROBED_DIVISOR = 64
_INTEGER_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(uint8)", "tensor(int8)", "tensor(uint16)", "tensor(int16)")


@dataclass(frozen=True)
class Fact:
    name: str
    value: Any
    source: str  # "card", "graph", "probe", "option" or "default"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type: str
    shape: tuple[int | str | None, ...]

    def describe(self) -> str:
        dims = "x".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.type} [{dims}]"


@dataclass(frozen=True)
class Inspection:
    """The resolved card of one model file, and where each of its facts came from."""

    card: ModelCard
    stored: bool  # the file carries a segedge card
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    facts: tuple[Fact, ...] = ()
    static_batch: int | None = None  # the batch a static model takes, else None
    channels_last_output: bool = False  # the output is N x H x W x C (NHWC models)
    target: dict[str, Any] | None = None  # the edge-target record of a file `export --target` made

    def shape_constraints(self) -> str:
        """One line: what input the file takes."""
        card = self.card
        batch = f" (batch {self.static_batch})" if self.static_batch else ""
        if not card.dynamic:
            larger = "resized to fit" if card.large_image == "resize" else "tiled"
            return (f"static input {card.input_size[0]} x {card.input_size[1]} only{batch}: smaller images are padded, "
                    f"larger ones {larger} (large_image {card.large_image})")
        rule = f", H and W padded to multiples of {card.size_divisor}" if card.size_divisor > 1 else ""
        dims = "N x H x W x 3" if card.layout == "NHWC" else "N x 3 x H x W"
        return f"dynamic input {dims}{batch}{rule}"

    def to_dict(self) -> dict[str, Any]:
        return {"stored_card": self.stored, "static_batch": self.static_batch, "target": self.target,
                "shape_constraints": self.shape_constraints(),
                "facts": [{"name": f.name, "value": _plain(f.value), "source": f.source} for f in self.facts]}


class InspectedCard:
    """What every runtime's session says of its model's card, read once into `self.inspection`."""

    inspection: Inspection

    @property
    def card(self) -> ModelCard:
        return self.inspection.card

    @property
    def stored_card(self) -> ModelCard | None:
        """The segedge card stored in the file; None for a model exported elsewhere."""
        return self.inspection.card if self.inspection.stored else None


def inspect_stored(card: ModelCard, overrides: Mapping[str, Any], inputs: tuple[TensorInfo, ...],
                   outputs: tuple[TensorInfo, ...], target: dict[str, Any] | None = None) -> Inspection:
    """A file with a segedge card: the card, with the user's overrides."""
    resolved = card.with_overrides(**overrides)
    batch = inputs[0].shape[0]
    facts = tuple(Fact(name, getattr(resolved, name), "option" if name in overrides else "card")
                  for name in _SHOWN if hasattr(resolved, name))
    # A fixed batch is the graph's whatever the card says of H and W (a foreign N = 1 model's int8 file).
    fixed = resolved.batch or (batch if isinstance(batch, int) and batch > 0 else None)
    return Inspection(resolved, True, inputs, outputs, facts, static_batch=fixed,
                      channels_last_output=(resolved.output_layout or resolved.layout) == "NHWC", target=target)


def inspect_foreign(path: Path, inputs: tuple[TensorInfo, ...], outputs: tuple[TensorInfo, ...],
                    overrides: Mapping[str, Any], run: Callable[[Inspection], RawRun]) -> Inspection:
    """A file without a card: read the graph, probe the model, apply the user's overrides.

    `run(inspection)` gives a raw runner for a provisional inspection (layout, types and batch
    known), used to probe the output's resolution and the size divisor.
    """
    graph = read_graph_summary(path)
    facts: dict[str, Fact] = {}

    def fact(name: str, value: Any, source: str) -> None:
        facts[name] = Fact(name, overrides[name] if name in overrides else value,
                           "option" if name in overrides else source)

    image = inputs[0]
    layout, layout_source = _layout(image.shape)
    fact("layout", layout, layout_source)
    channels_first = facts["layout"].value == "NCHW"
    spatial = image.shape[2:4] if channels_first else image.shape[1:3]
    static = all(isinstance(d, int) and d > 0 for d in spatial)
    fact("dynamic", not static, "graph")
    fact("input_size", tuple(spatial) if static else DEFAULT_INPUT_SIZE, "graph" if static else "default")
    if image.type == "tensor(uint8)":  # raw pixels in: any normalisation is inside the graph
        for name, value in (("mean", (0.0, 0.0, 0.0)), ("std", (1.0, 1.0, 1.0)), ("scale", 1.0)):
            fact(name, value, "graph")
    fact("input_name", image.name, "graph")
    chosen = _chosen_output(outputs, overrides.get("output_name"))
    fact("output_name", chosen.name, "graph")
    output_layout, output_layout_source = _output_layout(chosen, graph, facts["layout"])
    fact("output_layout", output_layout, output_layout_source)
    channels_last = facts["output_layout"].value == "NHWC"
    kind, classes = _output_kind(chosen, graph, facts["output_layout"].value)
    fact("output_kind", kind, "graph")
    batch = image.shape[0]
    if isinstance(batch, int) and batch > 0:
        fact("batch", batch, "graph")
    static_batch = facts["batch"].value if "batch" in facts else None
    if graph.nodes:  # an ORT-format file has no protobuf graph to read
        found = read_precision(((n.op_type, n.ints) for n in graph.nodes), image.type, [o.type for o in outputs])
        fact("precision", found.precision, "graph")
        fact("graph_precision", str(found), "graph")
    provisional = _card(path, facts, classes or 2)
    probe = _probe(run(Inspection(provisional, False, inputs, outputs, (), static_batch, channels_last_output=channels_last)),
                   provisional, graph, image.name, overrides)
    for name in ("output_stride", "valid_margin", "size_divisor"):
        if name in probe:
            fact(name, probe[name], "probe")
    count_source = "graph" if classes is not None else "probe"
    if classes is None and kind != "labels":
        classes = probe.get("channels")
    if "classes" in overrides:
        classes, count_source = len(overrides["classes"]), "option"
    if classes is None:
        raise CardError(f"{path}: outputs a label map over an unknown number of classes: give --classes "
                        "(their names, comma-separated)")
    fact("classes", default_class_names(classes), count_source)
    card = _card(path, facts, classes).with_overrides(**{k: v for k, v in overrides.items() if k not in facts})
    for name in _SHOWN:  # what nothing in the file said: the user's word, or segedge's default
        if name not in facts:
            facts[name] = Fact(name, getattr(card, name), "option" if name in overrides else "default")
    return Inspection(card, False, inputs, outputs, tuple(facts.values()), static_batch,
                      channels_last_output=channels_last)


# The card fields `segedge info` shows with their source.
_SHOWN = ("layout", "output_layout", "batch", "dynamic", "input_size", "input_name", "output_name", "output_kind",
          "classes", "mean", "std", "scale", "color_order", "size_divisor", "output_stride", "valid_margin", "precision",
          "graph_precision", "large_image")


def _layout(shape: tuple[int | str | None, ...]) -> tuple[str, str]:
    if len(shape) != 4:
        raise ModelFileError(f"the image input has rank {len(shape)}; segedge needs N x 3 x H x W or N x H x W x 3")
    if shape[1] == 3:
        return "NCHW", "graph"
    if shape[3] == 3:
        return "NHWC", "graph"
    return "NCHW", "default"


def _output_layout(output: TensorInfo, graph: GraphSummary, layout: Fact) -> tuple[str, str]:
    """The output's layout: a last Transpose to channels-last (CRAFT's `permute(0, 2, 3, 1)`) or to
    channels-first says it; else it follows the input's."""
    producer = next((n for n in graph.nodes if output.name in n.outputs), None)
    if producer is not None and producer.op_type == "Transpose":
        perm = producer.ints.get("perm", ())
        if perm == (0, 2, 3, 1):
            return "NHWC", "graph"
        if perm == (0, 3, 1, 2):
            return "NCHW", "graph"
    return layout.value, layout.source


def _chosen_output(outputs: tuple[TensorInfo, ...], name: str | None) -> TensorInfo:
    if name is None:
        return outputs[0]
    for out in outputs:
        if out.name == name:
            return out
    raise CardError(f"the model has no output named {name!r}; it has {', '.join(repr(o.name) for o in outputs)}")


def _output_kind(output: TensorInfo, graph: GraphSummary, layout: str) -> tuple[str, int | None]:
    """(output kind, class count when the graph tells it)."""
    producer = graph.producer(output.name)
    if output.type in _INTEGER_TYPES or (producer is not None and producer.op_type == "ArgMax"):
        return "labels", _argmax_classes(graph, producer, layout)
    shape = output.shape
    channel = shape[1] if layout == "NCHW" and len(shape) == 4 else shape[-1] if len(shape) == 4 else None
    channels = channel if isinstance(channel, int) and channel > 0 else None
    op = producer.op_type if producer is not None else ""
    if channels == 1:
        return ("sigmoid" if op == "Sigmoid" else "logit"), 2
    if op == "Softmax":
        return "probabilities", channels
    return "logits", channels


def _argmax_classes(graph: GraphSummary, producer: Any, layout: str) -> int | None:
    if producer is None or producer.op_type != "ArgMax" or not producer.inputs:
        return None
    dims = graph.shapes.get(producer.inputs[0])
    axis = producer.ints.get("axis", (0,))[0]
    if not dims or not -len(dims) <= axis < len(dims):
        return None
    count = dims[axis]
    return count if isinstance(count, int) and count > 1 else None


def _probe(run: RawRun, card: ModelCard, graph: GraphSummary, input_name: str,
           overrides: Mapping[str, Any]) -> dict[str, int]:
    """Run the model on small inputs: its channel count, output resolution and size divisor."""
    deepest = min(graph.max_downsampling(input_name), MAX_PROBED_DIVISOR)
    if card.dynamic:
        base = max(2 * deepest, 32)
        size = (base, base + base // 2 if deepest <= base // 2 else 2 * base)
    else:
        size = card.input_size
    try:
        channels, out = _output_shape(run, size)
    except Exception as exc:  # noqa: BLE001 - the runtime's failure, said in one line below
        raise ModelFileError(f"the model does not run on a {size[0]} x {size[1]} input "
                             f"({runtime_reason(exc)}); give --input-size, --layout or --size-divisor") from None
    found: dict[str, int] = {}
    if channels is not None and card.output_kind != "labels":
        found["channels"] = max(channels, 2)
    try:
        found["output_stride"], found["valid_margin"] = output_resolution(size, out)
    except ModelFileError:
        # Not an output the Predictor can map back to an image (it says so when it meets one); the
        # session still runs it for whoever reads raw outputs.
        return found
    if card.dynamic and "size_divisor" not in overrides:
        stride = found["output_stride"]
        found["size_divisor"] = max(_smallest_divisor(run, deepest, stride, found["valid_margin"]), stride)
    return found


def _output_shape(run: RawRun, size: tuple[int, int]) -> tuple[int | None, tuple[int, int]]:
    """(channels, (H, W)) of the model's NCHW-ordered output for one input of `size`."""
    x = np.zeros((1, 3, *size), np.float32)
    out = np.asarray(run(x))
    if out.ndim == 3:  # N x H x W labels
        return None, (int(out.shape[1]), int(out.shape[2]))
    if out.ndim != 4:
        raise ModelFileError(f"a {size[0]} x {size[1]} input gave an output of shape {out.shape}; segedge needs "
                             "N x C x H x W scores or N x H x W labels (choose another with --output NAME)")
    return int(out.shape[1]), (int(out.shape[2]), int(out.shape[3]))


def output_resolution(size: tuple[int, int], out: tuple[int, int]) -> tuple[int, int]:
    """(output stride, valid margin) that explain an output of `out` for an input of `size`."""
    (h, w), (oh, ow) = size, out
    if (oh, ow) == (h, w):
        return 1, 0
    if oh > 0 and ow > 0 and h % oh == 0 and w % ow == 0 and h // oh == w // ow:
        return h // oh, 0
    if h - oh == w - ow and (h - oh) % 2 == 0 and h > oh:
        return 1, (h - oh) // 2
    raise ModelFileError(f"a {h} x {w} input gave a {oh} x {ow} output: neither the input's size, a fixed "
                         "fraction of it, nor a fixed margin less; segedge cannot map it back to the image")


def _smallest_divisor(run: RawRun, deepest: int, stride: int, margin: int) -> int:
    """The smallest power of two d such that the model runs right on sides that are multiples of d only."""
    base = max(2 * deepest, 32)
    d = 1
    while d < deepest:
        size = (base + d, base + 3 * d)  # multiples of d, of no larger power of two
        try:
            _, out = _output_shape(run, size)
            if out == (math.ceil((size[0] - 2 * margin) / stride), math.ceil((size[1] - 2 * margin) / stride)):
                return d
        except Exception:  # noqa: BLE001 - a refused size: try the next divisor
            pass
        d *= 2
    return deepest


def _card(path: Path, facts: Mapping[str, Fact], classes: int) -> ModelCard:
    fields = {name: f.value for name, f in facts.items() if name in ModelCard.__dataclass_fields__}
    fields.setdefault("classes", default_class_names(classes))
    fields.setdefault("palette", default_palette(len(fields["classes"])))
    return ModelCard(name=path.stem, architecture="foreign", **fields)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
