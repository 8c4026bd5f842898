"""A model whose int8 fails in one known layer, built deterministically (no training, no torch).

    image -> conv1 (3->8, 3x3) -> relu -> conv2 (8->8, 1x1) -> relu -> classifier (8->4, 1x1)

conv2's last channel is a constant 500 (its bias): a dense outlier the classifier ignores. ONNX
Runtime's per-tensor uint8 activation of conv2's result then has a step of about 2 for values of
0..2 in the other channels, which decide the class: plain int8 loses most of the argmax agreement,
and neither another calibration method (the outlier is an eighth of the values, no percentile
clips it) nor per-channel weights (the activation is per tensor) wins it back. Keeping conv2's
result in float (conv2 and the classifier that reads it) does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from exporters.card_io import embed_card
from runtimes.model.card import ModelCard

SIZE = (32, 32)
CLASSES = 4
OUTLIER_LAYER = "conv2"


def build_outlier_model(path: Path, weight_outlier: bool = False) -> Path:
    """The activation-outlier model, or (`weight_outlier`) one whose conv2 has one weight of 300 among weights
    of about 1: 8-bit per-tensor weights (QNN's) then round the others to a few steps, 16-bit ones do not."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 1.0, (8, 8, 1, 1)).astype(np.float32)
    b2 = np.zeros(8, np.float32)
    w2[7] = 0.0
    if weight_outlier:
        w2[7, 0] = 300.0  # the outlier weight: its channel is large but within 16-bit activations' range
    else:
        b2[7] = 500.0  # the outlier channel
    w3 = rng.normal(0, 1.0, (CLASSES, 8, 1, 1)).astype(np.float32)
    w3[:, :CLASSES] += 8.0 * np.eye(CLASSES, dtype=np.float32)[:, :, None, None]  # clear margins between classes
    w3[:, 7] = 0.0
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (b2, "b2"), (w3, "w3"))]
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name=OUTLIER_LAYER),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3"], ["logits"], name="classifier"),
    ]
    graph = helper.make_graph(
        nodes, "outlier", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES, "h", "w"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    card = ModelCard.for_foreign_model("outlier", CLASSES, input_size=SIZE)
    onnx.save(embed_card(model, card), str(path))
    return path
