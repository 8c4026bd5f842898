"""The runtime axis: a new runtime is one small backend plus `register_backend`, and then the Predictor,
`bench` and `eval` run it like the built-in ones."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from runtimes import Predictor
from runtimes.backends import (Backend, RuntimeSpec, backend_for_path, backend_named, backend_names, open_runner,
                               register_backend, unregister_backend)
from runtimes.model.card import ModelCard
from runtimes.errors import ModelFileError, UsageError
from runtimes.model.inspection import Inspection, TensorInfo
from segedge.bench.run import BenchRequest, run_bench
from segedge.evaluate.run import EvalRequest, run_eval


# -- a whole runtime in a few lines: a numpy function that calls a pixel "red" when its red channel passes 0.5 --
@dataclass
class RedModel:
    path: Path
    inspection: Inspection
    active_providers: tuple[str, ...] = ("numpy",)

    card = property(lambda self: self.inspection.card)
    stored_card = property(lambda self: self.inspection.card)

    def run(self, batch: np.ndarray) -> np.ndarray:
        red = batch[:, 0]  # the card's mean 0, std 1: red in 0..1
        return np.stack([0.5 - red, red - 0.5], axis=1).astype(np.float32)

    def describe(self) -> str:
        return f"numpy {np.__version__}"


class RedBackend(Backend):
    name, suffixes, distribution = "numpy-red", (".redseg",), "numpy"

    def open(self, path: Path, spec: RuntimeSpec, overrides: Mapping[str, Any]) -> RedModel:
        card = ModelCard.from_json(path.read_text()).with_overrides(**overrides)
        tensors = (TensorInfo("image", "tensor(float)", (None, 3, None, None)),)
        return RedModel(path, Inspection(card, True, tensors, tensors))


@pytest.fixture
def red_backend():
    backend = register_backend(RedBackend())
    yield backend
    unregister_backend(backend.name)


def red_model(folder: Path) -> Path:
    card = ModelCard(name="red", classes=("background", "red"), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                     input_size=(32, 48))
    path = folder / "red.redseg"
    path.write_text(card.to_json())
    return path


def red_square(height: int, width: int, top: int, left: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.full((height, width, 3), 40, np.uint8)
    rgb[top : top + side, left : left + side] = (230, 20, 20)
    labels = np.zeros((height, width), np.uint8)
    labels[top : top + side, left : left + side] = 1
    return rgb, labels


def test_a_registered_backend_runs_behind_the_predictor(red_backend, tmp_path):
    path = red_model(tmp_path)
    assert backend_for_path(path) is red_backend and "numpy-red" in backend_names()
    predictor = Predictor(path)  # no runtime named: the file's own, by its suffix
    rgb, truth = red_square(37, 53, 5, 9, 17)
    assert predictor.runtime == "numpy-red" and predictor.providers == ("numpy",)
    np.testing.assert_array_equal(predictor.predict(rgb), truth)
    proba = predictor.predict_proba(rgb)
    assert proba.shape == (2, 37, 53) and np.allclose(proba.sum(axis=0), 1.0, atol=1e-5)
    big, big_truth = red_square(300, 200, 120, 30, 90)  # tiled at 64 x 64, its scores blended
    np.testing.assert_array_equal(Predictor(path, runtime="numpy-red", tile_size=64).predict(big), big_truth)


def test_bench_and_eval_run_a_registered_backend(red_backend, tmp_path):
    path = red_model(tmp_path)
    result = run_bench(BenchRequest(target=str(path), warmup=0, runs=2, spec=RuntimeSpec(threads=1)))
    (row,) = result.rows
    assert row.ok and row.name == "numpy-red runtime fp32" and row.runs == 2
    assert row.tags == {"precision": "fp32", "runtime": "numpy-red", "provider": "cpu"}
    assert result.provider == "numpy-red" and result.provider_reason.startswith("numpy ")
    assert result.input_size == (32, 48)

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for k in range(3):
        rgb, labels = red_square(40, 60, 3 * k, 5 * k, 20)
        Image.fromarray(rgb).save(data / "images" / f"{k}.png")
        Image.fromarray(labels).save(data / "masks" / f"{k}.png")
    scores = run_eval(EvalRequest(data=data, models=(path,))).scores
    ((label, accuracy),) = scores
    assert label == "red.redseg (fp32)" and accuracy.images == 3
    assert accuracy.miou == 1.0 and accuracy.per_class_iou == (1.0, 1.0)


def test_the_registry_refuses_clashes_and_names_what_it_knows(red_backend, tmp_path):
    with pytest.raises(UsageError, match="'numpy-red' is already registered"):
        register_backend(RedBackend())
    clash = type("Clash", (RedBackend,), {"name": "clash", "suffixes": (".xml",)})
    with pytest.raises(UsageError, match=r"\.xml files already open with openvino"):
        register_backend(clash())
    with pytest.raises(UsageError, match="unknown runtime 'tensorflow'; choose from onnxruntime, openvino, .*numpy-red$"):
        backend_named("tensorflow")
    assert backend_for_path("m.onnx").name == "onnxruntime" and backend_for_path("m.xml").name == "openvino"
    assert backend_for_path("m.weird").name == "onnxruntime"  # no owner: ONNX Runtime says what is wrong with it
    with pytest.raises(ModelFileError, match="red.redseg is a model file: open it with runtime='numpy-red'"):
        open_runner(red_model(tmp_path), RuntimeSpec("onnxruntime"))


def test_one_spec_validates_every_runtime_option():
    assert RuntimeSpec(hint="auto").hint is None  # "auto" is the runtime's own choice, for every caller
    spec = RuntimeSpec("openvino", "cpu", threads=2, hint="bf16")
    assert spec.provider_options.openvino_hint == "bf16" and spec.on(None).runtime is None
    with pytest.raises(UsageError, match="hint must be auto, f32, bf16, f16; got 'int4'"):
        RuntimeSpec(hint="int4")
    with pytest.raises(UsageError, match="threads must be in 1..1024"):
        RuntimeSpec(threads=5000)


def test_importing_the_predictor_loads_no_backend_it_does_not_run():
    import subprocess

    cli_only = ("runtimes.measure.timing", "runtimes.guards.outputs", "runtimes.guards.fileio", "runtimes.guards.interrupts", "psutil")
    code = ("import json, sys; from runtimes import Predictor; loaded = set(sys.modules); "
            "from runtimes.backends import backend_for_path; backend_for_path('m.onnx'); "
            f"print(json.dumps([sorted(m for m in sys.modules if 'openvino' in m), sorted(loaded & set({cli_only!r}))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    openvino, cli = json.loads(out)
    assert openvino == [] and cli == []  # an app's import: no OpenVINO, no benchmark harness or CLI file guards


def test_the_cli_runtime_group_offers_every_built_in_runtime(capsys):
    from segedge.cli import main
    from segedge.cli.options import RuntimeName

    assert [m.value for m in RuntimeName] == [n for n in backend_names() if n != "numpy-red"]
    assert main(["eval", "m.onnx", "--runtime", "tensorflow"]) == 2
    assert "onnxruntime" in capsys.readouterr().err
