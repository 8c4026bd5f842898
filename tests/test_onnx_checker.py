"""Every ONNX file segedge writes passes `onnx.checker.check_model(full_check=True)`; the node sort.

ONNX Runtime loads graphs whose nodes are out of order (it sorts them itself); the spec, the
checker and other runtimes do not. The fp16 converter produced such graphs (issue 15).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from exporters.graph_order import sort_topologically
from exporters.targets import TARGETS, build_for_target
from exporters.targets.table import Artefact
from runtimes.errors import ExportError

TINY = "tests/tiny_models.py:build"


def check(path: Path) -> None:
    onnx.checker.check_model(str(path), full_check=True)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """The files of one tiny model as segedge's verbs write them, by what wrote them."""
    from segedge.cli import main

    folder = tmp_path_factory.mktemp("checker")
    calib = folder / "calib"
    calib.mkdir()
    for i in range(4):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 48, 3), np.uint8)).save(calib / f"{i}.png")
    files = {
        "export fp32 (dynamo, simplified)": folder / "fp32.onnx",
        "export fp32 (torchscript)": folder / "fp32_ts.onnx",
        "quantize fp16": folder / "fp16.onnx",
        "quantize int8": folder / "int8.onnx",
        "export --precision fp16": folder / "export_fp16.onnx",
    }
    size = ["--input-size", "32x32"]
    assert main(["export", TINY, *size, "-o", str(files["export fp32 (dynamo, simplified)"])]) == 0
    assert main(["export", TINY, *size, "--exporter", "torchscript", "-o", str(files["export fp32 (torchscript)"])]) == 0
    fp32 = str(files["export fp32 (dynamo, simplified)"])
    assert main(["quantize", fp32, "--precision", "fp16", "-o", str(files["quantize fp16"])]) == 0
    # The tiny random model may miss the int8 preset (exit 1); the file is written either way.
    assert main(["quantize", fp32, "--precision", "int8", "--calib", str(calib), "-o", str(files["quantize int8"])]) in (0, 1)
    assert main(["export", TINY, *size, "--precision", "fp16", "-o", str(files["export --precision fp16"])]) == 0
    for name, spec in TARGETS.items():
        if spec.artefact not in (Artefact.onnx, Artefact.qnn_qdq):
            continue
        for precision in spec.precisions:
            out = folder / f"target_{name}_{precision}.onnx"
            build_for_target(fp32, name, out, precision=precision, calib=calib if spec.activations else None,
                             input_size=(32, 32))
            files[f"target {name} {precision}"] = out
    return files


def test_every_file_segedge_writes_passes_the_full_check(written):
    failed = {}
    for what, path in written.items():
        try:
            check(path)
        except onnx.checker.ValidationError as exc:
            failed[what] = str(exc).splitlines()[0]
    assert failed == {}
    assert {"quantize fp16", "quantize int8", "target gpu fp16"} <= set(written)


# -- the sort --------------------------------------------------------------------------------------
def _chain(order: list[int]) -> onnx.ModelProto:
    """x -> Relu -> Neg -> Abs -> y, the three nodes listed in `order`."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"), helper.make_node("Neg", ["a"], ["b"], name="neg"),
             helper.make_node("Abs", ["b"], ["y"], name="abs")]
    graph = helper.make_graph([nodes[i] for i in order], "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_a_reversed_chain_is_sorted_and_checks():
    model = sort_topologically(_chain([2, 0, 1]))
    assert [n.name for n in model.graph.node] == ["relu", "neg", "abs"]
    onnx.checker.check_model(model, full_check=True)


def test_a_sorted_graph_keeps_its_order_exactly():
    """Independent branches stay where they were: the sort moves only what must move."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    nodes = [helper.make_node("Neg", ["x"], ["n"], name="second_branch"),
             helper.make_node("Relu", ["x"], ["r"], name="first_branch"),
             helper.make_node("Add", ["n", "r"], ["y"], name="join")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]),
                              opset_imports=[helper.make_opsetid("", 18)])
    before = model.SerializeToString()
    assert sort_topologically(model).SerializeToString() == before


def test_initializers_and_omitted_optional_inputs_need_no_producer():
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])
    nodes = [helper.make_node("Relu", ["up"], ["y"], name="relu"),
             helper.make_node("Resize", ["x", "", "scales"], ["up"], name="resize")]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])], [scales])
    model = sort_topologically(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    assert [n.name for n in model.graph.node] == ["resize", "relu"]
    onnx.checker.check_model(model, full_check=True)


def test_a_subgraph_reading_an_outer_name_waits_for_its_producer():
    """An If whose branch reads `a` from the outer graph must come after the node making `a`."""
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])
    branch = helper.make_graph([helper.make_node("Identity", ["a"], ["o"], name="pass")], "branch", [], [out])
    flag = numpy_helper.from_array(np.array(True), "flag")
    nodes = [helper.make_node("If", ["flag"], ["y"], name="if", then_branch=branch, else_branch=branch),
             helper.make_node("Relu", ["x"], ["a"], name="relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [flag])
    model = sort_topologically(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    assert [n.name for n in model.graph.node] == ["relu", "if"]
    onnx.checker.check_model(model, full_check=True)


def test_a_name_nothing_provides_is_an_error_naming_it():
    model = _chain([0, 1, 2])
    model.graph.node[1].input[0] = "nowhere"
    with pytest.raises(ExportError, match="node 'neg' reads nowhere, which no node, input or initializer provides"):
        sort_topologically(model)
