"""Where int8 loses accuracy: SQNR per quantized tensor, from ONNX Runtime's `qdq_loss_debug`.

The fp32 model (after the same pre-processing the quantizer saw, so tensor names match) and the
QDQ model both run on the calibration images with every intermediate tensor saved; then, per
activation the QDQ model quantizes:

- `vs_fp32_db`: SQNR of the QDQ model's tensor against the fp32 model's (all noise so far);
- `lost_db`: how much SQNR the nodes producing it lose, from the worst quantized tensor feeding
  them to their output: the noise their weights and output quantization add. Rows are ranked by
  it and named by the weighted node (Conv) of that stretch: `--exclude` keeps it in float.

Per weight: SQNR of the dequantized int8 weights against the fp32 ones. Every tensor of every
image is held in memory while this runs: use a few images.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from onnxruntime.quantization.qdq_loss_debug import (
    collect_activations,
    compute_activation_error,
    compute_weight_error,
    create_activation_matching,
    create_weight_matching,
    modify_model_output_intermediate_tensors,
)

from runtimes.model.card import ModelCard
from runtimes.guards.fileio import work_folder

from .calibration import ImageFolderReader
from .int8 import preprocess


@dataclass(frozen=True)
class TensorError:
    tensor: str
    node: str
    op_type: str
    vs_fp32_db: float
    lost_db: float


@dataclass(frozen=True)
class WeightError:
    weight: str
    node: str
    sqnr_db: float


@dataclass(frozen=True)
class LayerReport:
    activations: list[TensorError]  # worst (most SQNR lost) first
    weights: list[WeightError]  # worst first
    images: int

    def worst_nodes(self, count: int) -> list[str]:
        """Names of the `count` nodes that lose the most SQNR (candidates for `--exclude`)."""
        names: list[str] = []
        for row in self.activations:
            if row.node and row.node not in names:
                names.append(row.node)
        return names[:count]

    def to_dict(self) -> dict:
        return {"images": self.images, "activations": [asdict(a) for a in self.activations],
                "weights": [asdict(w) for w in self.weights]}


def layer_errors(fp32_path: str | os.PathLike[str], int8_path: str | os.PathLike[str],
                 images: Sequence[Path], card: ModelCard) -> LayerReport:
    """Compare the fp32 and QDQ models tensor by tensor on `images`."""
    with work_folder("segedge-qdq-debug-") as workdir:
        work = Path(workdir)
        prepared = work / "prepared.onnx"
        preprocess(Path(fp32_path), prepared)
        graph = onnx.load(os.fspath(prepared)).graph
        input_name = graph.input[0].name
        float_acts = _activations(prepared, work / "float_saving.onnx", images, card, input_name)
        qdq_acts = _activations(Path(int8_path), work / "qdq_saving.onnx", images, card, input_name)
        weights = compute_weight_error(create_weight_matching(os.fspath(prepared), os.fspath(int8_path)))
    errors = compute_activation_error(create_activation_matching(qdq_acts, float_acts))
    return LayerReport(_rank_activations(graph, errors), _rank_weights(graph, weights), len(images))


def _activations(model: Path, saving: Path, images: Sequence[Path], card: ModelCard, input_name: str) -> dict:
    modify_model_output_intermediate_tensors(os.fspath(model), os.fspath(saving))
    return collect_activations(os.fspath(saving), ImageFolderReader(images, card, input_name))


def _rank_activations(graph: onnx.GraphProto, errors: dict[str, dict[str, float]]) -> list[TensorError]:
    vs_fp32 = {name: e.get("xmodel_err", math.nan) for name, e in errors.items()}
    producer = {out: node for node in graph.node for out in node.output}
    rows = []
    for name in errors:
        nodes, sources = _segment(name, producer, vs_fp32)
        before = min((vs_fp32[t] for t in sources), default=_CLEAN_DB)
        culprit = next((n for n in nodes if n.op_type in _WEIGHTED_OPS), nodes[0] if nodes else None)
        rows.append(TensorError(name, culprit.name if culprit else "", culprit.op_type if culprit else "input",
                                vs_fp32[name], max(0.0, before - vs_fp32[name])))
    return sorted(rows, key=lambda r: -r.lost_db)


def _segment(tensor: str, producer: dict, quantized: dict) -> tuple[list, set[str]]:
    """The float nodes between `tensor` and the quantized tensors (or graph inputs) feeding them.

    ORT folds a Relu into the quantization of its Conv's output, so a quantized tensor is often
    two nodes (Conv, Relu) away from the previous one; the loss belongs to the whole segment.
    """
    nodes, sources, pending, seen = [], set(), [tensor], set()
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        nodes.append(node)
        for name in node.input:
            if name in quantized:
                sources.add(name)
            elif name in producer:
                pending.append(name)
    return nodes, sources


_WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# What a tensor "had" before the first quantized node: float32 noise is ~140 dB; a cap keeps
# the loss at the first node comparable with the others'.
_CLEAN_DB = 60.0


def _rank_weights(graph: onnx.GraphProto, errors: dict[str, float]) -> list[WeightError]:
    consumer = {i: node.name for node in graph.node for i in node.input}
    rows = [WeightError(name, consumer.get(name, ""), sqnr) for name, sqnr in errors.items()]
    return sorted(rows, key=lambda r: r.sqnr_db)
