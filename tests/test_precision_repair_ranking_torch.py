"""`segedge quantize ONNX --sensitivity --rank-for executorch|litert` (issue 30): the quantizers that read the PyTorch
model rank the layers of the one the ONNX file's card records (tests/outlier_torch.py's, exported here), with the
model's own module names, and state their cost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.outlier_torch import OUTLIER_MODULE, SOURCE

# runtime, the package it needs, calibration passes (PT2E calibrates every variant; ai-edge-quantizer's one pass
# serves them all), the points conv2 in float may leave (LiteRT's int8 input and output tensors cost ~2.8)
CASES = [("executorch", "executorch", 4, 3.0), ("litert", "litert_torch", 1, 4.0)]


@pytest.fixture(scope="module")
def outlier(tmp_path_factory, outlier_calib) -> tuple[Path, Path]:
    from segedge.cli import main

    onnx_file = tmp_path_factory.mktemp("outlier-ranking") / "outlier.onnx"
    assert main(["export", SOURCE, "--input-size", "32x32", "-o", str(onnx_file)]) == 0
    return onnx_file, outlier_calib


@pytest.mark.parametrize(("runtime", "package", "passes", "budget"), CASES, ids=[c[0] for c in CASES])
def test_quantize_sensitivity_ranks_the_layers_of_the_model_the_card_records(outlier, cli, runtime, package, passes,
                                                                             budget):
    pytest.importorskip(package)
    model, calib = outlier
    code, out, err = cli("quantize", model, "--sensitivity", "--calib", calib, "--calib-count", "8",
                         "--rank-for", runtime, "--json")
    assert code == 0, err
    (ranking,) = json.loads(out)["rankings"]
    assert ranking["runtime"] == runtime and ranking["kept_as"] == "float"
    assert ranking["base_measured"]["lost_points"] > 40 and ranking["rows"][0]["name"] == OUTLIER_MODULE
    assert ranking["rows"][0]["lost_points"] < budget and ranking["variants"] == 4
    assert ranking["calibration_passes"] == passes
