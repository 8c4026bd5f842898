"""The demo training: a cached, reproducible trained model for the precision tests and benchmarks."""

from __future__ import annotations

import dataclasses
import json

import pytest

from segedge.data import ShapesConfig, classes_of
from segedge.train import demo, recipe
from segedge.train.recipe import FULL, SMALL, TrainConfig, trained_model

TINY = TrainConfig(data=ShapesConfig(train=16, val=4, size=(32, 32)), steps=4, batch_size=2)
SMALL_MIN_MIOU = 0.80  # issue 6: mIoU >= 0.80 on held-out images; SMALL measures 0.8279 (portable numerics, on every x86-64 CPU)


def test_small_model_is_trained(demo_models):
    metrics = demo_models.trained.metrics
    assert metrics["miou"] >= SMALL_MIN_MIOU
    assert set(metrics["per_class_iou"]) == set(classes_of(1)) == set(demo_models.trained.classes)
    assert metrics["config"]["model"] == SMALL.model


def test_cached_and_reproducible(tmp_path):
    first = trained_model(TINY, tmp_path / "a")
    stamp = first.checkpoint.stat().st_mtime_ns
    again = trained_model(TINY, tmp_path / "a")
    assert again.folder == first.folder and again.checkpoint.stat().st_mtime_ns == stamp
    other = trained_model(TINY, tmp_path / "b")  # trained afresh, elsewhere: the same weights
    assert other.checkpoint.read_bytes() == first.checkpoint.read_bytes() or _same_state(first, other)
    assert json.loads((first.folder / "metrics.json").read_text())["miou"] == other.metrics["miou"]
    assert sorted(p.name for p in (tmp_path / "a" / "trained").iterdir()) == sorted([first.folder.name, f"{first.folder.name}.lock"])


def test_portable_numerics_ignore_the_kernels_this_machine_would_pick(tmp_path, monkeypatch):
    """Another machine's kernels, simulated: ATen's scalar ones and MKL's automatic branch, asked for by the
    caller's environment. Native training follows them into other weights; portable training pins its own."""
    portable = dataclasses.replace(TINY, numerics="portable")
    here = {n: trained_model(dataclasses.replace(TINY, numerics=n), tmp_path / "here") for n in ("native", "portable")}
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    monkeypatch.setenv("MKL_CBWR", "AUTO")
    native_there = trained_model(TINY, tmp_path / "there")
    portable_there = trained_model(portable, tmp_path / "there")
    assert native_there.metrics["aten_capability"] == "DEFAULT" and native_there.metrics["onednn"]
    assert native_there.metrics["weights_sha256"] != here["native"].metrics["weights_sha256"]
    assert portable_there.metrics["weights_sha256"] == here["portable"].metrics["weights_sha256"]
    assert {k: portable_there.metrics[k] for k in ("numerics", "mkl_cbwr", "onednn")} == {
        "numerics": "portable", "mkl_cbwr": "COMPATIBLE,STRICT", "onednn": False}
    assert _same_state(here["portable"], portable_there)


def test_a_failed_training_says_why_in_one_line(tmp_path):
    broken = dataclasses.replace(TINY, build_kwargs={"padding": "same", "base_channels": 16, "no_such_option": 1})
    with pytest.raises(RuntimeError, match=r"^training unet failed: .*no_such_option") as failure:
        trained_model(broken, tmp_path)
    assert "\n" not in str(failure.value)
    assert [p.name for p in (tmp_path / "trained").iterdir()] == [f"{broken.key()}.lock"]  # nothing half-written


def test_keys_follow_the_recipe():
    assert TINY.key() == dataclasses.replace(TINY).key()
    assert TINY.key() != dataclasses.replace(TINY, steps=5).key()
    assert SMALL.key() != FULL.key() and SMALL.key().startswith("unet-")
    assert SMALL.numerics == FULL.numerics == "portable"  # the tests' and benchmarks' weights: alike on every x86-64 CPU
    assert TINY.key() != dataclasses.replace(TINY, numerics="portable").key()


def _same_state(a, b) -> bool:
    import torch

    sa, sb = torch.load(a.checkpoint, weights_only=True), torch.load(b.checkpoint, weights_only=True)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_key_says_whether_bf16_ran(monkeypatch):
    auto = dataclasses.replace(TINY, autocast="auto")
    monkeypatch.setattr(recipe, "cpu_has_bf16", lambda: True)
    with_bf16 = auto.key()
    assert auto.bf16 and with_bf16 == dataclasses.replace(TINY, autocast="bf16").key()
    monkeypatch.setattr(recipe, "cpu_has_bf16", lambda: False)
    assert not auto.bf16 and auto.key() == TINY.key() != with_bf16  # fp32 weights never pass for bf16 ones


@pytest.mark.parametrize("bad", [{"autocast": "fp16"}, {"steps": 0}, {"threads": 0}, {"numerics": "exact"},
                                 {"numerics": "portable", "autocast": "bf16"}])
def test_bad_recipe(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


# Issue 12: each demo recipe as measured (2 threads, bf16 autocast on AVX512-BF16, channels_last):
# its cache key, the held-out mIoU it reached, and minutes on a shared 2-core AMD EPYC. The key is a
# hash of the recipe, so the cached weights are what the recipe makes; change a measured recipe and
# this test fails until it has been trained and measured again. NOT_YET_MEASURED are written down
# but have not been trained to the end here.
MEASURED: dict[str, tuple[str, float, float]] = {
    "deeplabv3plus_resnet50": ("deeplabv3plus_resnet50-f7ce5e02b345", 0.8928, 1.1),  # quiet; 300 steps at 1e-3: 0.9128
    "deeplabv3plus_mobilenetv2": ("deeplabv3plus_mobilenetv2-0ab84ec3c708", 0.9405, 7.9),  # the rest beside a test run
    "unet": ("unet-c6df5b18a547", 0.9825, 16.7),
    "hrnet_w18_ocr": ("hrnet_w18_ocr-6a25755c7cf0", 0.9345, 6.4),
    "lraspp_mobilenet_v3_large": ("lraspp_mobilenet_v3_large-6825d0eb9ea6", 0.8545, 4.6),
    "pspnet_resnet50": ("pspnet_resnet50-0e3d8e3d7724", 0.8194, 12.1),  # quiet
    "fcn8s": ("fcn8s-9b25bcac2fd9", 0.8348, 21.6),  # He-initialised VGG; 400 steps with the default init: 0.751
    # Issue 16's transformers (a 2-core Intel Xeon, AVX512-BF16, no AMX; FCN-8s too).
    "segformer_b0": ("segformer_b0-32f720af4605", 0.9694, 6.1),  # quiet
    "upernet_swin_t": ("upernet_swin_t-9a83005a3bbb", 0.9457, 13.6),  # 0.87 s a step quiet; ran beside a benchmark
}
# Trained to the end, short of 0.80.
SHORT_OF_TARGET: dict[str, tuple[str, float, float]] = {}
NOT_YET_MEASURED: set[str] = set()


def test_demo_recipes_are_the_measured_ones(monkeypatch):
    monkeypatch.setattr(recipe, "cpu_has_bf16", lambda: True)  # the keys of bf16 runs, as measured
    assert set(MEASURED) | set(SHORT_OF_TARGET) | NOT_YET_MEASURED == set(demo.RECIPES)
    assert len(MEASURED) + len(SHORT_OF_TARGET) + len(NOT_YET_MEASURED) == len(demo.RECIPES)
    trained = {**MEASURED, **SHORT_OF_TARGET}
    assert {name: demo.RECIPES[name].key() for name in trained} == {name: key for name, (key, _, _) in trained.items()}
    assert all(miou >= 0.80 for _, miou, _ in MEASURED.values())
    assert all(miou < 0.80 for _, miou, _ in SHORT_OF_TARGET.values())
