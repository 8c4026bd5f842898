"""ONNX graphs for the edge-target tests: built with `onnx.helper`, operators some targets cannot run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_node(name: str, source: str, out: str, rng, cin: int, cout: int, **attrs) -> tuple[onnx.NodeProto, list]:
    weight = numpy_helper.from_array((rng.standard_normal((cout, cin, 3, 3)) * 0.3).astype(np.float32), f"{name}.w")
    bias = numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}.b")
    node = helper.make_node("Conv", [source, weight.name, bias.name], [out], name=name, kernel_shape=[3, 3],
                            pads=[1, 1, 1, 1], **attrs)
    return node, [weight, bias]


def write_segnet_model(path: Path) -> Path:
    """SegNet-style: Mish, MaxPool with indices and MaxUnpool, which several targets cannot run (ORT's CPU can)."""
    rng = np.random.default_rng(2)
    c1, i1 = conv_node("enc_conv", "image", "e", rng, 3, 8)
    c2, i2 = conv_node("mid_conv", "pooled", "m", rng, 8, 8)
    head = numpy_helper.from_array((rng.standard_normal((3, 8, 1, 1)) * 0.3).astype(np.float32), "head.w")
    nodes = [
        c1, helper.make_node("Mish", ["e"], ["e_act"], name="enc_mish"),
        helper.make_node("MaxPool", ["e_act"], ["pooled", "indices"], name="enc_pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        c2, helper.make_node("Shape", ["e_act"], ["unpool_shape"], name="unpool_shape"),
        helper.make_node("MaxUnpool", ["m", "indices", "unpool_shape"], ["unpooled"], name="dec_unpool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["unpooled", "head.w"], ["logits"], name="classifier", kernel_shape=[1, 1]),
    ]
    graph = helper.make_graph(nodes, "segnetish", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                                 ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [*i1, *i2, head])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path
