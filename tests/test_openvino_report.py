"""`segedge report`'s rows for every runtime x precision x quantizer an app can ship through the Predictor,
and the verdict naming the install the best row needs; `--runtime openvino` on bench, verify and eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtimes import Predictor
from runtimes.backends import RuntimeSpec
from segedge.cli import main
from segedge.report import ReportRequest, run_report

pytest.importorskip("nncf")

TINY = "tests/tiny_models.py:build"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("ov_report")
    return run_report(ReportRequest(target=TINY, output=out, precisions=("fp32", "int8"),
                                    runtimes=("onnxruntime", "openvino", "torch"), input_size=(48, 48), spec=RuntimeSpec(threads=1),
                                    warmup=0, runs=2, calib_count=8))


def test_every_shippable_row_is_there_and_runs(report):
    assert [r.label for r in report.rows] == [
        "fp32 / cpu / onnxruntime", "fp32 / CPU f32 / openvino", "fp32 / CPU bf16 / openvino", "fp32 / cpu / torch",
        "int8 / cpu / onnxruntime", "int8 / CPU, ORT QDQ / openvino", "int8 / CPU, NNCF IR / openvino"]
    assert all(r.status == "ok" and r.p50_ms > 0 for r in report.rows), [(r.label, r.reason) for r in report.rows]
    by = {r.label: r for r in report.rows}
    assert any("inference precision bf16" in n for n in by["fp32 / CPU bf16 / openvino"].notes)
    assert any("inference precision f32" in n for n in by["fp32 / CPU f32 / openvino"].notes)
    assert by["fp32 / CPU f32 / openvino"].agreement == 1.0 and by["fp32 / CPU f32 / openvino"].parity_ok


def test_nncf_row_runs_the_ir_made_for_openvino(report):
    nncf_row = {r.label: r for r in report.rows}["int8 / CPU, NNCF IR / openvino"]
    xml = Path(report.files["int8-nncf"])
    assert nncf_row.file == str(xml) and xml.suffix == ".xml" and xml.with_suffix(".bin").is_file()
    card = Predictor(xml, runtime="openvino").card
    assert card.runtime == "openvino" and card.calibration["quantizer"] == "nncf" and card.parity["runtime"] == "openvino"
    assert nncf_row.agreement is not None and nncf_row.agreement > 0.9


def test_the_verdict_names_the_install_the_best_row_needs(report):
    assert report.best is not None and "ship it: pip install" in report.best_reason
    best = {r.label: r for r in report.rows}[report.best]
    assert ("segedge[openvino]" in report.best_reason) == (best.runtime == "openvino")
    assert f'Predictor("{best.file}"' in report.best_reason and best.file and Path(best.file).is_file()


def test_bench_runtime_openvino_times_the_predictors_adapter(capsys, tmp_path, report):
    fp32 = report.files["fp32"]
    code = main(["bench", fp32, "--runtime", "openvino", "--openvino-hint", "f32", "--no-torch", "--compare", "ort-cpu",
                 "--runs", "2", "--warmup", "0", "--threads", "1", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["provider"] == "openvino" and data["active_providers"] == ["OpenVINO CPU (f32)"]
    assert [r["tags"]["runtime"] for r in data["rows"]] == ["openvino", "onnxruntime"]
    assert "f32 inference" in data["provider_reason"]
    code = main(["bench", fp32, "--runtime", "openvino", "--profile", "--no-torch"])
    assert code == 2 and "--profile goes with --runtime onnxruntime" in capsys.readouterr().err


def test_verify_and_eval_run_the_model_on_openvino(capsys, tmp_path, report):
    from segedge.data import ShapesConfig, write_shapes_dataset

    fp32 = report.files["fp32"]
    code = main(["verify", fp32, "--reference", fp32, "--runtime", "openvino", "--openvino-hint", "f32", "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == 0 and data["preset"] == "fp32" and data["providers"] == ["OpenVINO CPU (f32)"], captured.err
    code = main(["verify", fp32, "--reference", fp32, "--runtime", "openvino", "--openvino-hint", "bf16", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["preset"] == "fp16"  # OpenVINO runs this fp32 file in bf16: judged by its masks, as fp16 is
    assert all(r["provider"] == "openvino bf16" for r in data["results"])
    labelled = write_shapes_dataset(tmp_path / "shapes", ShapesConfig(train=0, val=3, size=(48, 48)))
    scores = {}
    for runtime in ("onnxruntime", "openvino"):
        code = main(["eval", fp32, "--data", labelled, "--runtime", runtime, "--openvino-hint", "f32", "--json"]
                    if runtime == "openvino" else ["eval", fp32, "--data", labelled, "--json"])
        scores[runtime] = json.loads(capsys.readouterr().out)
        assert code == 0
    miou = {runtime: result["models"][0]["miou"] for runtime, result in scores.items()}
    assert miou["openvino"] == pytest.approx(miou["onnxruntime"], abs=1e-6)
