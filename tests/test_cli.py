"""The CLI through `segedge.cli.main` (in process) and through real `segedge` subprocesses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segedge import __version__

from .hostile import one_error_line

ROOT = Path(__file__).resolve().parents[1]
TINY = "tests/tiny_models.py:build"



@pytest.fixture(scope="module")
def tiny_onnx(tiny_export):
    return tiny_export("48x40")


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"segedge {__version__}"


def test_models_json_lists_the_zoo(cli):
    code, out, _ = cli("models", "--json")
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    assert code == 0 and "deeplabv3plus_resnet50" in names
    row = next(r for r in rows if r["name"] == "deeplabv3plus_resnet50")
    assert row["aliases"] == ["deeplabv3plus"] and row["num_classes"] == 21
    assert row["input_size"] == [512, 512] and 39e6 < row["params"] < 42e6


def test_export_json_summary(cli, tmp_path):
    path = tmp_path / "m.onnx"
    code, out, err = cli("export", TINY, "--input-size", "32x48", "-o", str(path), "--json",
                             "--exporter", "torchscript", "--classes", "a,b,c,d")
    data = json.loads(out)
    assert code == 0 and data["passed"] and data["path"] == str(path)
    assert data["card"]["classes"] == ["a", "b", "c", "d"] and data["card"]["exporter"] == "torchscript"
    assert [p["size"] for p in data["parity"]][0] == [32, 48]
    assert path.stat().st_size == data["size_bytes"]


def test_info_and_verify(cli, tiny_onnx):
    code, out, _ = cli("info", str(tiny_onnx), "--json")
    info = json.loads(out)
    assert code == 0 and info["card"]["name"] == "build" and info["inputs"][0].startswith("image: tensor(float) [Nx3xHxW]")
    assert "CPUExecutionProvider" in info["available_providers"]
    assert info["format"] == "ONNX" and info["opset"]["ai.onnx"] >= 17
    code, out, _ = cli("info", str(tiny_onnx))
    assert code == 0 and f"ONNX  (opset ai.onnx {info['opset']['ai.onnx']}; {info['producer']})" in out.splitlines()[0]
    code, out, _ = cli("verify", str(tiny_onnx), "--sizes", "48x40,33x71", "--json")
    report = json.loads(out)
    assert code == 0 and report["passed"] and [r["size"] for r in report["results"]] == [[48, 40], [33, 71]]
    for r in report["results"]:
        assert r["max_abs"] <= 1e-4 * r["logits_range"] and r["argmax_agreement"] >= 0.9999
        assert r["cosine"] > 0.999999 and r["sqnr_db"] > 80


def test_verify_fails_with_exit_1_on_impossible_tolerance(cli, tiny_onnx):
    code, _, err = cli("verify", str(tiny_onnx), "--sizes", "32x32", "--atol", "0", "--rtol", "0")
    # An exact zero tolerance fails unless ORT and torch agree bit for bit; both outcomes are
    # legitimate, but the exit code must follow the report.
    if code == 1:
        assert "does not match PyTorch" in one_error_line(err)
    else:
        assert code == 0


def test_bench_json_has_both_runtimes(cli, tiny_onnx):
    code, out, _ = cli("bench", str(tiny_onnx), "--runs", "3", "--warmup", "1", "--threads", "1", "--json")
    data = json.loads(out)
    assert code == 0 and [r["runtime"].split()[0] for r in data["rows"]] == ["onnxruntime", "torch"]
    assert data["active_providers"] == ["CPUExecutionProvider"] and data["threads"] == 1
    for row in data["rows"]:
        assert row["runs"] == 3 and 0 < row["p50_ms"] <= row["p99_ms"] and row["throughput"] > 0
    assert data["machine"]["cpu"]["usable_cpus"] >= 1 and "onnxruntime" in data["machine"]["versions"]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["export", "no_such_model"], 2, "unknown model 'no_such_model'"),
        (["export", TINY, "--input-size", "big"], 2, "must look like HxW"),
        (["export", TINY, "--input-size", "0x5"], 2, "1 <= H, W"),
        (["export", TINY, "--opset", "99"], 2, "--opset"),
        (["export", TINY, "--exporter", "tflite"], 2, "--exporter must be dynamo or torchscript"),
        (["export", TINY, "--mean", "1,2"], 2, "three comma-separated numbers"),
        (["export", TINY, "--weights", "/nonexistent/w.pt"], 1, "checkpoint not found"),
        (["export", TINY, "-o", "/proc/forbidden/x.onnx"], 1, "cannot"),
        (["info", "/nonexistent.onnx"], 1, "model file not found"),
        (["info", "pyproject.toml"], 1, "not a valid ONNX file"),
        (["verify", "pyproject.toml"], 1, "not a valid ONNX file"),
        (["bench", "/nonexistent.onnx", "--no-torch"], 1, "model file not found"),
        (["bench", "x.onnx", "--provider", "gpu"], 2, "--provider"),
        (["models", "--bogus"], 2, "No such option"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(cli, monkeypatch, args, code, message):
    monkeypatch.chdir(ROOT)
    got, _, err = cli(*args)
    assert got == code
    assert message in one_error_line(err)


def test_unavailable_provider_is_an_error_not_a_cpu_run(cli, tiny_onnx):
    code, _, err = cli("bench", str(tiny_onnx), "--provider", "cuda", "--no-torch")
    line = one_error_line(err)
    assert code == 1 and "cuda provider" in line and "onnxruntime-gpu" in line


def test_model_without_card_is_benched_at_the_inspected_size(cli, tmp_path, tiny_onnx):
    import onnx

    proto = onnx.load(str(tiny_onnx))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    # A dynamic model exported elsewhere: timed at the default 512 x 512 unless --input-size says otherwise.
    code, out, _ = cli("bench", str(bare), "--no-torch", "--runs", "2", "--json")
    assert code == 0 and json.loads(out)["input_size"] == [512, 512]
    code, out, _ = cli("bench", str(bare), "--no-torch", "--input-size", "32x32", "--runs", "2", "--json")
    data = json.loads(out)
    assert code == 0 and data["rows"][0]["name"] == "onnxruntime fp32" and data["input_size"] == [32, 32]
    # PyTorch cannot be rebuilt for it: by default there is no PyTorch row, and a note says why ...
    code, out, err = cli("bench", str(bare), "--input-size", "32x32", "--runs", "2", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["rows"]) == 1 and "no segedge card naming its PyTorch source" in data["notes"][0]
    # ... and asked for, the row says so and the run fails (a requested row failed).
    code, out, err = cli("bench", str(bare), "--torch", "--input-size", "32x32", "--runs", "2", "--json")
    torch_row = json.loads(out)["rows"][1]
    assert code == 1 and torch_row["status"] == "failed" and "no segedge card" in torch_row["reason"]
    assert "1 of 2 rows failed" in one_error_line(err)


def test_real_subprocess_runs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    version = subprocess.run([sys.executable, "-m", "segedge", "--version"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert version.returncode == 0 and version.stdout.strip() == f"segedge {__version__}"
    out = tmp_path / "sub.onnx"
    export = subprocess.run(
        [sys.executable, "-m", "segedge", "export", TINY, "--input-size", "32x32", "-o", str(out), "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)["passed"] is True and out.is_file()
    bad = subprocess.run([sys.executable, "-m", "segedge", "export", "nope"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("segedge: error: unknown model 'nope'")
    assert "Traceback" not in bad.stderr and bad.stdout == ""


def test_piped_tables_are_not_cut_to_80_columns():
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"PYTHONPATH": str(ROOT)}
    piped = subprocess.run([sys.executable, "-m", "segedge", "models"], capture_output=True, text=True, env=env, cwd=ROOT)
    narrow = subprocess.run([sys.executable, "-m", "segedge", "models"], capture_output=True, text=True,
                            env=env | {"COLUMNS": "80"}, cwd=ROOT)
    assert piped.returncode == narrow.returncode == 0
    assert "deeplabv3_mobilenet_v3_large" in piped.stdout and "…" not in piped.stdout
    assert "…" in narrow.stdout  # $COLUMNS still decides when set


def test_every_options_help_shows_its_brackets(cli, monkeypatch):
    """Help is rich markup: an unescaped `segedge[openvino]` printed as `segedge`, the extra lost."""
    import re

    import typer

    from segedge.cli import app

    monkeypatch.setenv("COLUMNS", "3000")  # one line per option: no wrapping inside a bracket
    group = typer.main.get_command(app)
    checked = 0
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        code, out, _ = cli(name, "--help")
        assert code == 0
        for param in command.params:
            for raw in re.findall(r"\\?\[[^\]\s]+\]", getattr(param, "help", None) or ""):
                assert raw.lstrip("\\") in out, f"{name} {param.name}: {raw} lost in --help"
                checked += 1
    assert checked >= 4  # --runtime and --engine on several verbs at least
