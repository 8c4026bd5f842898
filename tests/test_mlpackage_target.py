"""`segedge export --target mlpackage`: Core ML packages written by coremltools, read back and checked here.

What this machine (Linux) can check: the package loads as a Core ML spec, its operators are all MIL
operators Core ML documents for the package's deployment target, its image input and logits output
have the card's shapes (fixed, or flexible with the ranges written), the card sits in its user
metadata, int8 weights are stored as int8. What it cannot: numerics and speed (Core ML runs on
Apple's systems only): `segedge verify` says so and exits 1; on a Mac it compares with PyTorch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("coremltools")

from exporters.targets.mlpackage_spec import check_mil_ops, read_mlpackage  # noqa: E402
from runtimes.model.card import CARD_KEY  # noqa: E402

SCALED = "tests/coreml_models.py:build_scaled"


def segedge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "segedge", *args], capture_output=True, text=True, timeout=900,
                          check=False)


def export(source: str, out: Path, *args: str) -> dict:
    done = segedge("export", source, "--target", "mlpackage", "-o", str(out), "--json", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["target"]


def test_zoo_model_converts_static_and_says_why(tmp_path):
    out = tmp_path / "lraspp.mlpackage"
    result = export("lraspp_mobilenet_v3_large", out, "--input-size", "64x64", "--precision", "fp16")
    assert result["input_shape"] == [1, 3, 64, 64] and result["precision"] == "fp16"
    assert any("static 64x64 input: flexible H/W did not convert" in note for note in result["notes"])
    info = read_mlpackage(out)
    assert info.format == "Core ML ML Program (.mlpackage)"
    assert [(t.name, t.kind, t.shape, t.ranges) for t in info.inputs] == [("image", "image RGB", (64, 64), ())]
    assert [(t.name, t.shape) for t in info.outputs] == [("logits", (1, 21, 64, 64))]
    assert info.outputs[0].kind == "multiarray FLOAT16"
    assert info.card is not None and info.card.name == "lraspp_mobilenet_v3_large" and not info.card.dynamic
    assert info.target == {**info.target, "target": "mlpackage", "deployment": "iOS16"}
    check = check_mil_ops(info, "iOS16")
    assert check.ran and check.unsupported == () and check.nodes == sum(info.operators.values()) > 100
    assert {"conv", "upsample_bilinear"} <= set(info.operators)


@pytest.mark.parametrize("precision, weights", [("fp32", "FLOAT32"), ("int8", "FLOAT16")])
def test_user_model_converts_with_flexible_sides(tmp_path, precision, weights):
    out = tmp_path / f"scaled_{precision}.mlpackage"
    result = export(SCALED, out, "--input-size", "96x128", "--precision", precision, "--classes", "sky,sea,boat",
                    "--size-divisor", "4")
    assert result["input_shape"] is None  # flexible
    info = read_mlpackage(out)
    (image,) = info.inputs
    assert image.shape == (96, 128) and image.ranges == ((32, 4096), (32, 4096))
    assert info.outputs[0].kind == f"multiarray {weights}"
    card = info.card
    assert card is not None and card.dynamic and card.classes == ("sky", "sea", "boat") and card.precision == precision
    assert card.size_divisor == 4
    quantized = {op for op in info.operators if op.startswith("constexpr_")}
    assert bool(quantized) == (precision == "int8")  # int8 weights are dequantized by constexpr ops at load
    assert check_mil_ops(info, "iOS16").unsupported == ()


def test_info_reads_the_package_and_verify_says_it_needs_a_mac(tmp_path):
    out = tmp_path / "scaled.mlpackage"
    export(SCALED, out, "--input-size", "64x64")
    done = segedge("info", str(out))
    assert done.returncode == 0, done.stderr
    assert "Core ML ML Program (.mlpackage)" in done.stdout and "image: image RGB 64x64 (flexible: 32..4096" in done.stdout
    assert "logits: multiarray FLOAT32 (its shape follows the input's)" in done.stdout and "runs here: no: a .mlpackage runs only on macOS" in done.stdout
    as_json = json.loads(segedge("info", str(out), "--json").stdout)
    assert as_json["card"]["name"] == "build_scaled" and as_json["card"]["dynamic"] is True
    assert as_json["runs_here"] is False

    done = segedge("verify", str(out))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"segedge: error: not verified: a .mlpackage runs only on macOS / iOS (Core ML); this machine is linux; "
        f"run `segedge verify {out}` on a Mac"]


def test_bad_requests_write_nothing(tmp_path):
    done = segedge("export", SCALED, "--target", "mlpackage", "-o", str(tmp_path / "model.onnx"))
    assert done.returncode == 2 and "writes a .mlpackage package" in done.stderr
    taken = tmp_path / "taken.mlpackage"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    done = segedge("export", SCALED, "--target", "mlpackage", "-o", str(taken))
    assert done.returncode == 2 and "was not written by segedge" in done.stderr
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    done = segedge("export", SCALED, "--target", "mlpackage", "--precision", "auto", "-o", str(tmp_path / "a.mlpackage"))
    assert done.returncode == 2 and "fp32 or fp16 or int8" in done.stderr and not (tmp_path / "a.mlpackage").exists()
    assert CARD_KEY == "segedge.card"
