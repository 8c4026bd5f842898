"""Hostile input at the command line: every verb's bad arguments, hostile checkpoints and models.

Images are in tests/test_hostile_images.py; the shared rules (one error line, the documented
exit code, no file left) in tests/hostile.py.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from tests.hostile import (
    TINY,
    assert_refused,
    files_under,
    valid_png,
)
from tests.test_hostile_models import CASES as HOSTILE_MODEL_CASES
from tests.test_hostile_models import hostile_files
from tests.tiny_models import build

# -- command-line arguments out of range or malformed -------------------------------------------
USAGE_CASES = [
    (["--bogus"], "No such option"),
    (["frobnicate"], "No such command"),
    (["export"], "Missing argument"),
    (["export", TINY, "--num-classes", "0"], "--num-classes"),
    (["export", TINY, "--num-classes", "-3"], "--num-classes"),
    (["export", TINY, "--num-classes", "many"], "--num-classes"),
    (["export", TINY, "--num-classes", "70000"], "--num-classes"),
    (["export", TINY, "--opset", "10"], "--opset"),
    (["export", TINY, "--opset", "1e9"], "--opset"),
    (["export", TINY, "--input-size", "-5x5"], "1 <= H, W"),
    (["export", TINY, "--input-size", "99999x5"], "1 <= H, W"),
    (["export", TINY, "--input-size", "5x5x5"], "HxW"),
    (["export", TINY, "--input-size", ""], "HxW"),
    (["export", TINY, "--input-size", "\x00"], "HxW"),
    (["export", TINY, "--std", "a,b,c"], "three numbers"),
    (["export", TINY, "--mean", "1,2,3,4"], "three comma-separated"),
    (["export", TINY, "--exporter", ""], "--exporter"),
    (["export", "tests/tiny_models.py:no_such_function"], "no_such_function"),
    (["export", "tests/no_such_file.py:build"], "no_such_file"),
    (["export", "tests/tiny_models.py:build_broken"], "always fails"),
    (["export", "tests/tiny_models.py:build_not_a_module"], "not a torch.nn.Module"),
    (["export", "../../etc/passwd:build"], "passwd"),
    (["export", ":"], ":"),
    (["info"], "Missing argument"),
    (["info", "m.onnx", "--json", "--extra"], "No such option"),
    (["verify", "m.onnx", "--batch", "0"], "--batch"),
    (["verify", "m.onnx", "--batch", "65"], "--batch"),
    (["verify", "m.onnx", "--atol", "-1"], "--atol"),
    (["verify", "m.onnx", "--rtol", "nan?"], "--rtol"),
    (["verify", "m.onnx", "--min-agreement", "1.5"], "--min-agreement"),
    (["verify", "m.onnx", "--preset", "fp64"], "--preset"),
    (["verify", "m.onnx", "--provider", "tpu"], "--provider"),
    (["verify", "m.onnx", "--seed", "x"], "--seed"),
    (["bench", "m.onnx", "--runs", "0"], "--runs"),
    (["bench", "m.onnx", "--warmup", "-1"], "--warmup"),
    (["bench", "m.onnx", "--threads", "0"], "--threads"),
    (["bench", "m.onnx", "--batch", "0"], "--batch"),
    (["bench", "m.onnx", "--batch", "100000"], "--batch"),
    (["models", "extra-argument"], "unexpected extra argument"),
    (["report", TINY, "--precisions", "fp64"], "--precisions"),
    (["report", TINY, "--providers", "gpu"], "--providers"),
    (["report", TINY, "--providers", ","], "--providers"),
    (["report", TINY, "--runtimes", "bogus"], "--runtimes"),
    (["report", TINY, "--calib-count", "0"], "--calib-count"),
    (["report", TINY, "--budget", "-1"], "--budget"),
    (["report", TINY, "--runs", "0"], "--runs"),
    (["report", TINY, "--input-size", "0x0"], "1 <= H, W"),
]


@pytest.mark.parametrize("args, message", USAGE_CASES, ids=[" ".join(a)[:60] for a, _ in USAGE_CASES])
def test_malformed_command_lines_exit_2(cli, hostile_dir, args, message):
    assert_refused(cli, hostile_dir, args, 2, message)


def test_out_of_range_size_for_a_real_model_exits_2(cli, hostile_dir, hostile_model):
    for args in (
        ["verify", hostile_model, "--sizes", "0x4"],
        ["verify", hostile_model, "--sizes", "32x32,abc"],
        ["verify", hostile_model, "--sizes", ""],
        ["bench", hostile_model, "--no-torch", "--input-size", "0x0"],
        ["bench", hostile_model, "--no-torch", "--input-size", "20000x20000"],
    ):
        assert_refused(cli, hostile_dir, args, 2, "HxW")


@pytest.mark.parametrize("verb", [["info"], ["verify"], ["bench", "--no-torch"]])
def test_a_folder_or_a_missing_model_exits_1(cli, hostile_dir, verb):
    folder = hostile_dir / "a_folder.onnx"
    folder.mkdir()
    assert_refused(cli, hostile_dir, [verb[0], folder, *verb[1:]], 1, "not a file")
    assert_refused(cli, hostile_dir, [verb[0], hostile_dir / "missing.onnx", *verb[1:]], 1, "not found")


# -- checkpoints: `segedge export tests/tiny_models.py:build --weights X` -----------------------
class Payload:
    """Unpickling this runs `touch marker`; segedge must never unpickle it."""

    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _good_checkpoint(path: Path) -> None:
    torch.save(build().state_dict(), path)


def _truncated(path: Path) -> None:
    _good_checkpoint(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _pickled_module(path: Path) -> None:
    torch.save(build(), path)


def _code_payload(path: Path) -> None:
    Payload.marker = str(path.parent / "PWNED")
    torch.save({"stem.0.weight": torch.zeros(1), "evil": Payload()}, path)


def _raw_pickle_payload(path: Path) -> None:
    # A legacy (non-zip) pickle file, as old torch.save wrote them.
    Payload.marker = str(path.parent / "PWNED")
    path.write_bytes(pickle.dumps(Payload()))


def _other_network(path: Path) -> None:
    torch.save({"encoder.0.weight": torch.zeros(8, 3, 3, 3), "decoder.bias": torch.zeros(2)}, path)


def _wrong_shapes(path: Path) -> None:
    torch.save(build(num_classes=21).state_dict(), path)


def _prefix_beside_other_keys(path: Path) -> None:
    """A training framework's prefix on the weights and a loss's keys without it: no uniform prefix to strip."""
    state = {f"model.{k}": v for k, v in build().state_dict().items()}
    torch.save({"state_dict": {**state, "criterion.weight": torch.ones(4)}}, path)


def _weights_under_an_unknown_key(path: Path) -> None:
    torch.save({"student": build().state_dict(), "teacher": build().state_dict()}, path)


def _not_a_state_dict(path: Path) -> None:
    torch.save([torch.zeros(3)], path)


def _non_tensor_value(path: Path) -> None:
    state = dict(build().state_dict())
    state["stem.0.weight"] = "a string"
    torch.save(state, path)


CHECKPOINTS = {
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "truncated": (_truncated, "cannot be read"),
    "not zip": (lambda p: p.write_bytes(b"just some text, not a checkpoint\n" * 10), "cannot be read"),
    "png renamed": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200)), "cannot be read"),
    "zip of junk": (lambda p: p.write_bytes(b"PK\x03\x04" + os.urandom(300)), "cannot be read"),
    "pickled nn.Module": (_pickled_module, "pickled Python objects"),
    "__reduce__ payload": (_code_payload, "pickled Python objects"),
    "raw pickle payload": (_raw_pickle_payload, "checkpoint"),
    "another network": (_other_network, "missing keys"),
    "wrong shapes": (_wrong_shapes, "--num-classes"),
    "a prefix beside other keys": (_prefix_beside_other_keys, "save the inner model's state_dict() alone"),
    "weights under an unknown key": (_weights_under_an_unknown_key, "torch.save(checkpoint['student']"),
    "a list": (_not_a_state_dict, "no state_dict"),
    "non-tensor value": (_non_tensor_value, "not a tensor"),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_hostile_checkpoint_is_one_line_exit_1_and_no_file(cli, hostile_dir, case):
    make, message = CHECKPOINTS[case]
    weights = hostile_dir / "inputs" / "weights.pt"
    weights.parent.mkdir()
    make(weights)
    output = hostile_dir / "out" / "model.onnx"
    line = assert_refused(cli, hostile_dir, ["export", TINY, "--weights", weights, "-o", output], 1, message)
    if "does not fit" not in line:  # a mismatch names the model instead
        assert str(weights) in line
    assert not (weights.parent / "PWNED").exists(), "the pickled payload ran"
    assert not output.exists()


def test_a_folder_as_weights(cli, hostile_dir):
    assert_refused(cli, hostile_dir, ["export", TINY, "--weights", hostile_dir], 1, "not a file")


def test_a_good_checkpoint_still_exports(cli, hostile_dir):
    weights = hostile_dir / "good.pt"
    _good_checkpoint(weights)
    output = hostile_dir / "model.onnx"
    code, _, err = cli("export", TINY, "--weights", weights, "-o", output, "--input-size", "24x24",
                                    "--no-simplify", "--static", "--json")
    assert code == 0, err
    assert output.is_file()
    assert [p.name for p in output.parent.iterdir() if p.name.startswith(".")] == []
    assert files_under(hostile_dir / "tmp") == []


# -- hostile ONNX files through the verbs tests/test_hostile_models.py does not run ---------------
@pytest.mark.parametrize("case", HOSTILE_MODEL_CASES)
def test_hostile_model_through_predict_and_verify(cli, hostile_dir, case):
    (hostile_dir / "models_case").mkdir()
    model_dir, cases = hostile_files(hostile_dir / "models_case")
    make, message = cases[case]
    model = model_dir / "model.onnx"
    make(model)
    photo = hostile_dir / "photo.png"
    valid_png(photo)
    for args in (["predict", model, photo, "-o", hostile_dir / "out"], ["verify", model, "--sizes", "8x8"],
                 ["info", model, "--isolate"]):
        line = assert_refused(cli, hostile_dir, args, 1, "")
        assert re.search(message, line), line


def test_predict_into_a_file_instead_of_a_folder(cli, hostile_dir, hostile_model):
    photo = hostile_dir / "photo.png"
    valid_png(photo)
    taken = hostile_dir / "taken.txt"
    taken.write_bytes(b"keep me")
    assert_refused(cli, hostile_dir, ["predict", hostile_model, photo, "-o", taken], 1, "cannot write")
    assert taken.read_bytes() == b"keep me"


def test_running_out_of_memory_is_one_line(cli, hostile_dir, hostile_model, monkeypatch):
    import runtimes.predictor

    def exhausted(self, batch):
        raise MemoryError

    monkeypatch.setattr(runtimes.predictor.Predictor, "_run", exhausted)
    photo = hostile_dir / "photo.png"
    valid_png(photo)
    assert_refused(cli, hostile_dir, ["predict", hostile_model, photo, "-o", hostile_dir / "out"], 1, "out of memory")


@pytest.mark.parametrize("case", ["__reduce__ payload", "pickled nn.Module", "truncated", "wrong shapes"])
def test_hostile_checkpoint_as_verify_reference_weights(cli, hostile_dir, hostile_model, case):
    make, message = CHECKPOINTS[case]
    weights = hostile_dir / "inputs" / "weights.pt"
    weights.parent.mkdir()
    make(weights)
    assert_refused(cli, hostile_dir, ["verify", hostile_model, "--weights", weights, "--sizes", "16x16"], 1, message)
    assert not (weights.parent / "PWNED").exists(), "the pickled payload ran"
