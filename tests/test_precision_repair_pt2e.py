"""Issue 30 for ExecuTorch's PT2E quantizer (XNNPACKQuantizer): the ranking and the repair on real .pte programs.

tests/outlier_torch.py's model fails int8 in one known layer (conv2's result holds a dense outlier
channel): the tests show plain int8 fails on ExecuTorch's runtime, the ranking puts conv2 first, the
repair keeps exactly that layer (its node and the classifier reading it) in float, and that
`quantize --sensitivity --rank-for executorch` and `export --target executorch --precision auto`
reach it. Inputs are 32 x 32, eight calibration images; every variant is a lowered program.
"""

from __future__ import annotations

import pytest

from tests.outlier_torch import OUTLIER_MODULE, SIZE, SOURCE, build, repair_setup

pytest.importorskip("executorch")

BUDGET = 3.0  # argmax-agreement points: conv2 in float leaves ~1.8, plain int8 loses ~56


def test_the_pt2e_repair_keeps_the_outlier_layer_in_float_on_executorch(outlier_calib, tmp_path):
    from segedge.quantize.adapters.pt2e import Pt2eExecuTorch
    from segedge.quantize.repair import repair

    card, inputs, judge_against = repair_setup(outlier_calib, BUDGET)
    adapter = Pt2eExecuTorch(build(), card, SIZE, inputs, tmp_path)
    units = adapter.units()
    assert [u.name for u in units] == ["conv1", OUTLIER_MODULE, "classifier"]  # the model's own module names
    assert units[1].nodes == ("conv2d_1", "relu_1", "conv2d_2")  # conv2, what its result flows through, its reader
    judge = judge_against(adapter.runner(adapter.reference(tmp_path / "fp32.pte")))
    result = repair(adapter, judge, len(inputs), tmp_path)
    assert [s.name for s in result.steps[:2]] == ["start", "calibration: minmax"]
    assert all(not s.measured.ok and s.measured.lost > 40 for s in result.steps[:2])  # plain int8 fails, either observer
    assert result.sensitivity is not None and result.sensitivity.rows[0].unit.name == OUTLIER_MODULE
    assert result.sensitivity.rows[0].recovered > 40 and all(r.recovered < 5 for r in result.sensitivity.rows[1:])
    chosen = result.chosen
    assert chosen is not None and chosen.name == "1 layer in float" and chosen.path.suffix == ".pte"
    assert chosen.candidate.kept_layers == (OUTLIER_MODULE,) and chosen.measured.lost <= BUDGET
    assert adapter.calibrations == 6  # PT2E keeps no ranges: start, min/max, 3 ranked variants, the chosen one
    assert "kept=['conv2d_1', 'relu_1', 'conv2d_2']" in result.record()["reproduce"]


def test_export_executorch_precision_auto_writes_the_repaired_program(outlier_calib, cli, tmp_path):
    from runtimes.backends.executorch_session import open_executorch

    out = tmp_path / "outlier.pte"
    code, _, err = cli("export", SOURCE, "--target", "executorch", "--static", "--input-size", "32x32",
                       "--precision", "auto", "--calib", outlier_calib, "-o", out)
    assert out.is_file(), err
    card = open_executorch(out).card
    record = card.calibration["repair"]
    assert card.precision.value == "int8" and record["runtime"] == "executorch" and record["passed"]
    assert record["kept_layers"][0] == OUTLIER_MODULE and record["sensitivity"][0]["name"] == OUTLIER_MODULE
    assert record["steps"][0]["lost_points"] > 40 and record["steps"][-1]["lost_points"] <= 1.0  # quantize's budget
    assert code == 0, err  # the target's own int8 check passes on the repaired program


def test_a_precision_the_target_lacks_is_refused_in_one_line(cli):
    code, out, err = cli("export", SOURCE, "--target", "executorch", "--input-size", "32x32", "--precision", "fp16")
    assert code == 2 and "takes --precision fp32, int8 or auto, not fp16" in err and len(err.strip().splitlines()) == 1
