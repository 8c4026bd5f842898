"""`segedge report --runtimes ...,litert,executorch` (issue 27): LiteRT and ExecuTorch fp32/int8 rows beside
ONNX Runtime and PyTorch in one interleaved run, on trained weights, with mIoU and the target each row stands for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtimes.backends import RuntimeSpec
from segedge.cli import main
from segedge.report import ReportRequest, run_report
from segedge.report.render import write_report

pytest.importorskip("litert_torch")
pytest.importorskip("executorch")

EDGE = ("litert fp32", "litert int8", "executorch fp32", "executorch int8")


def _threads() -> int:
    """ExecuTorch's thread pool is one per process, sized when a test of this worker first loaded a program:
    a report in the same process times every row with that many threads."""
    from runtimes.backends.executorch_session import pool_threads

    return pool_threads() or 1


@pytest.fixture(scope="module")
def edge_report(demo_models, tmp_path_factory):
    """The trained small U-Net reported at its labelled images' 64x64: each edge file is converted once."""
    out = tmp_path_factory.mktemp("edge") / "report"
    request = ReportRequest(target=str(demo_models.fp32), output=out, precisions=("fp32", "int8"),
                            runtimes=("onnxruntime", "torch", "litert", "executorch"), input_size=(64, 64),
                            spec=RuntimeSpec(threads=_threads()), warmup=1, runs=3, calib=demo_models.data, calib_count=8,
                            data=demo_models.data, data_limit=20, weights=demo_models.trained.checkpoint)
    report = run_report(request)
    return report, write_report(report, out), out


def _rows(report):
    """Plain rows by "runtime precision" (a repaired row, where plain int8 missed the budget, under "... repaired")."""
    return {f"{r.runtime} {r.precision}{' repaired' if r.repaired else ''}": r for r in report.rows}


def test_edge_rows_are_timed_and_scored_beside_the_others(edge_report, demo_models):
    report, _, out = edge_report
    rows = _rows(report)
    assert set(EDGE) <= set(rows)
    eager = rows["torch fp32"]
    for name in EDGE:
        row = rows[name]
        runtime, precision = name.split()
        assert row.status == "ok", row.reason
        assert row.provider == "cpu, XNNPACK" and row.target == runtime
        assert row.quantizer == ({"litert": "ai-edge-quantizer", "executorch": "pt2e"}[runtime] if precision == "int8" else None)
        assert row.p50_ms is not None and row.p50_ms > 0 and row.miou is not None
        suffix = ".tflite" if runtime == "litert" else ".pte"
        assert Path(row.file) == out / f"{demo_models.fp32.stem.removesuffix('_fp32')}_{precision}{suffix}"
        assert Path(row.file).is_file() and report.files[f"{runtime}-{precision}"] == row.file
    for name in ("litert fp32", "executorch fp32"):  # the same fp32 network: the same masks
        assert abs(rows[name].miou_lost) < 0.05 and rows[name].parity_ok, rows[name]
    for name in ("litert int8", "executorch int8"):  # each runtime's own int8, its loss as measured (8 images calibrate it)
        assert 0 < rows[name].miou < eager.miou + 0.01
        assert rows[name].miou_lost == pytest.approx(100 * (eager.miou - rows[name].miou), abs=1e-3)
    assert rows["onnxruntime fp32"].target == "cpu" and eager.target is None


def test_each_target_gets_its_best_row_and_the_files_say_so(edge_report):
    report, written, _ = edge_report
    assert set(report.per_target) == {"cpu", "litert", "executorch"}
    rows = {r.label: r for r in report.rows}
    for target, label in report.per_target.items():
        assert label is None or rows[label].target == target
    payload = json.loads(Path(written["json"]).read_text())
    assert payload["best"]["per_target"] == report.per_target
    assert {r["target"] for r in payload["rows"]} == {None, "cpu", "litert", "executorch"}
    markdown = Path(written["markdown"]).read_text()
    assert "| target |" in markdown and "- litert: " in markdown and "- executorch: " in markdown
    if report.best is not None and rows[report.best].runtime in ("litert", "executorch"):
        assert 'Predictor("' in report.best_reason and ('.tflite' in report.best_reason or '.pte' in report.best_reason)


def test_a_static_file_is_scored_by_its_conversion_at_the_images_size(demo_models, tmp_path):
    """Timed at 96x96, the LiteRT file cannot take the 64x64 labelled images: the same conversion made at
    64x64 measures its mIoU, written beside it and named in the row's notes."""
    out = tmp_path / "report"
    report = run_report(ReportRequest(target=str(demo_models.fp32), output=out, precisions=("fp32",),
                                      runtimes=("torch", "litert"), input_size=(96, 96), spec=RuntimeSpec(threads=1),
                                      warmup=1, runs=2, data=demo_models.data, data_limit=20,
                                      weights=demo_models.trained.checkpoint))
    row = _rows(report)["litert fp32"]
    assert row.status == "ok" and row.file.endswith("_fp32.tflite"), row.reason
    assert any("_fp32_64x64.tflite" in note and "static at 64x64" in note for note in row.notes), row.notes
    assert (out / Path(row.file).name.replace(".tflite", "_64x64.tflite")).is_file()
    assert abs(row.miou_lost) < 0.05


def test_int8_over_the_budget_gets_a_repaired_row_on_each_edge_runtime(tmp_path):
    """issue 30 point 4 for PT2E (ExecuTorch) and ai-edge-quantizer (LiteRT): the outlier model's plain int8 file
    changes most pixels' class; each runtime's repair search keeps its outlier layer in float, the repaired file is
    timed and judged beside it, and the page shows each search's steps and ranking."""
    from segedge.data import ShapesConfig, write_shapes_dataset
    from tests.outlier_torch import OUTLIER_MODULE

    calib = write_shapes_dataset(tmp_path / "calib", ShapesConfig(train=8, val=0, size=(32, 32))) / "JPEGImages"
    out = tmp_path / "out"
    report = run_report(ReportRequest(target="tests/outlier_torch.py:build", output=out, precisions=("fp32", "int8"),
                                      runtimes=("torch", "executorch", "litert"), input_size=(32, 32),
                                      spec=RuntimeSpec(threads=_threads()), warmup=1, runs=2, calib=calib, calib_count=8))
    rows = {r.label: r for r in report.rows}
    # LiteRT keeps the input and output tensors int8 (static_wi8_ai8), which costs this toy ~3 points on its own
    for runtime, suffix, agreement in (("executorch", ".pte", 0.98), ("litert", ".tflite", 0.95)):
        plain, fixed = rows[f"int8 / cpu, XNNPACK / {runtime}"], rows[f"int8, repaired / cpu, XNNPACK / {runtime}"]
        assert plain.status == "ok" and plain.agreement < 0.9 and not plain.parity_ok  # on the generated input
        assert fixed.status == "ok" and fixed.p50_ms > 0 and fixed.agreement > agreement, (fixed.reason, fixed.agreement)
        assert fixed.file.endswith(f"_int8_repaired{suffix}") and report.files[f"{runtime}-int8-repaired"] == fixed.file
        assert any(n.startswith("repaired: plain int8 lost") and f"kept in float ({OUTLIER_MODULE}" in n
                   for n in fixed.notes), fixed.notes
    assert set(report.per_target) == {"executorch", "litert"}
    written = write_report(report, out)
    page = Path(written["html"]).read_text()
    assert "ExecuTorch PT2E int8 (XNNPACK)" in page and "LiteRT int8 (ai-edge-quantizer)" in page
    assert "1 layer in float" in page and "points recovered per layer kept in float" in page
    assert Path(written["sensitivity"]).is_file()


def test_edge_rows_are_asked_for_by_name(capsys, tmp_path):
    """They convert the model four more times: the default report has none; an unknown runtime is refused."""
    assert ReportRequest(target="m", output=tmp_path).runtimes == ("onnxruntime", "openvino", "torch", "compile")
    code = main(["report", "tests/tiny_models.py:build", "-o", str(tmp_path / "r"), "--runtimes", "onnxruntime,tflite"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "litert, executorch" in lines[0], lines
