"""Trained weights, honestly made: a zoo model trained on the shapes dataset, cached between runs.

Quantization accuracy means nothing on random weights (int8 agreed with fp32 on 66% of pixels of
a random DeepLab v3+), so tests and benchmarks need a trained model; segedge downloads none. This
trains one on `segedge.data.shapes` in minutes on a CPU:

- the images are prepared by `runtimes.imaging.preprocess.to_model_input` with the model's card, as the
  Predictor and int8 calibration prepare them, and masks are read like `segedge eval` reads them;
- flips and quarter turns (the classes do not change under either), AdamW, one-cycle schedule;
- bf16 autocast where the CPU has bf16 units (AVX512-BF16 or AMX; `autocast="auto"`), channels_last
  on request: what the CPU offers, as the large recipes of `segedge.train.demo` need;
- mIoU is measured on the held-out `val` split (in fp32, at the images' own size, prepared as the
  Predictor prepares them) and stored beside the weights;
- one thread by default: the small convolutions gain little from a second one, and on a shared
  machine two spinning threads ran several times slower than one; one thread also makes runs repeatable;
- `numerics="portable"` trains the same weights on every x86-64 CPU with AVX2, about 3x slower
  (`segedge.train.numerics`); the tests' and benchmarks' recipes use it. Training runs in a child
  process (`segedge.train.worker`), which is where those settings can still take effect.

The result is cached under `$SEGEDGE_CACHE` (default `~/.cache/segedge`) in a folder named by a
hash of the recipe; concurrent callers (pytest-xdist workers) wait on a lock and share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runtimes.model.card import ModelCard
from runtimes.guards.fileio import exclusive_lock
from runtimes.imaging.image import load_image
from runtimes.measure.machine import cpu_flags
from runtimes.imaging.preprocess import to_model_input
from segedge.data.demo import cache_root, dataset_folder
from segedge.data.labelled import labelled_pairs, read_mask
from segedge.data.shapes import IGNORE_INDEX, ShapesConfig, write_shapes_dataset
from segedge.evaluate.scoring import evaluate, torch_labeller
from segedge.sources import build
from segedge.train import numerics

RECIPE_VERSION = 2  # bump when the training code or the dataset changes what a config produces
Progress = Callable[[str], None]
AUTOCAST = ("auto", "bf16", "off")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "unet"
    build_kwargs: dict[str, Any] = field(default_factory=lambda: {"padding": "same", "base_channels": 16})
    data: ShapesConfig = field(default_factory=lambda: ShapesConfig(train=1500, val=100, size=(64, 64), version=1))
    steps: int = 1000
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1
    autocast: str = "off"  # "auto": bf16 where the CPU has bf16 units; "bf16"; "off" (fp32)
    channels_last: bool = False
    warmup: float = 0.15  # share of the steps the one-cycle schedule spends warming up
    numerics: str = "native"  # "portable": the same weights on every x86-64 CPU with AVX2 (segedge.train.numerics)

    def __post_init__(self) -> None:
        if self.autocast not in AUTOCAST:
            raise ValueError(f"autocast must be one of {AUTOCAST}, got {self.autocast!r}")
        if self.numerics not in numerics.NUMERICS:
            raise ValueError(f"numerics must be one of {numerics.NUMERICS}, got {self.numerics!r}")
        if self.numerics == "portable" and self.autocast != "off":
            raise ValueError("portable numerics train in fp32: bf16 units are not on every CPU")
        if self.steps < 1 or self.batch_size < 1 or self.threads < 1:
            raise ValueError("steps, batch_size and threads must be >= 1")

    @property
    def bf16(self) -> bool:
        """Whether training runs under bf16 autocast here ("auto" asks the CPU)."""
        return self.autocast == "bf16" or (self.autocast == "auto" and cpu_has_bf16())

    def key(self) -> str:
        """The cache key: a hash of everything that decides the weights, bf16 or not included."""
        recipe = {**dataclasses.asdict(self), "autocast": "bf16" if self.bf16 else "off"}
        if self.numerics == "native":
            del recipe["numerics"]  # the keys of recipes measured before portable numerics existed still hold
        text = json.dumps({"recipe": RECIPE_VERSION, **recipe}, sort_keys=True)
        return f"{self.model}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> TrainConfig:
        """The config `dataclasses.asdict` (or its JSON) gave."""
        data = {**fields["data"], "size": tuple(fields["data"]["size"])}
        return cls(**{**fields, "data": ShapesConfig(**data)})


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: oneDNN then runs bf16 convolutions natively (about 1.7x fp32 for ResNet-50 here)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


# Tests: a U-Net of 16 base channels, 1,000 steps of one core; the benchmark: one 1.5x as wide (int8
# pays off on wide convolutions; narrow ones are memory-bound) and more data. With native numerics
# they took about 3 and under 7 minutes (mIoU 0.82 and 0.89 on AVX-512 CPUs); portable numerics,
# which make their weights the same on every x86-64 CPU, take about 3x as long (SMALL: 602 s, mIoU
# 0.8279, int8 within a point, on a 2-core AVX2-only EPYC; docs/demo-weights.md). Narrower
# or shorter runs (U-Net 8, or 700 steps) reached mIoU 0.63-0.79 and lost 2-8 mIoU points in int8:
# an undertrained network's small margins do not survive 8-bit activations, so the tests' model must
# be trained properly. Both train on version 1 of the shapes data (four classes), where these figures
# were measured; the demo recipes (`segedge.train.demo`) train on version 3.
SMALL = TrainConfig(numerics="portable")
FULL = TrainConfig(
    build_kwargs={"padding": "same", "base_channels": 24},
    data=ShapesConfig(train=2000, val=200, size=(64, 64), version=1),
    steps=1000,
    numerics="portable",
)


@dataclass(frozen=True)
class TrainedModel:
    """A trained checkpoint, the dataset it was trained on, and its held-out accuracy."""

    folder: Path
    config: TrainConfig
    metrics: dict[str, Any]
    data: Path  # the dataset's root (segedge.data.demo.dataset_folder): train split, held-out val split

    @property
    def checkpoint(self) -> Path:
        return self.folder / "weights.pt"

    @property
    def classes(self) -> tuple[str, ...]:
        return self.config.data.classes

    @property
    def build_options(self) -> dict[str, Any]:
        return {**self.config.build_kwargs, "num_classes": len(self.classes)}


def trained_model(config: TrainConfig = SMALL, cache: Path | None = None,
                  progress: Progress = lambda message: None) -> TrainedModel:
    """The model trained with `config`: from the cache, or trained now and cached (data and weights alike)."""
    cache = Path(cache or cache_root())
    data = dataset_folder(config.data, cache, progress)
    root = cache / "trained"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / config.key()
    with exclusive_lock(root / f"{config.key()}.lock"):
        if not (folder / "metrics.json").is_file():
            with tempfile.TemporaryDirectory(prefix=f".{config.key()}-", dir=root) as workdir:
                work = Path(workdir)
                train(config, work, progress, data)
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(work, folder)
                work.mkdir()  # TemporaryDirectory removes its (now empty) folder itself
    return TrainedModel(folder, config, json.loads((folder / "metrics.json").read_text()), data)


def train(config: TrainConfig, out: Path, progress: Progress = lambda message: None,
          data: Path | None = None) -> dict[str, Any]:
    """Train on the dataset at `data` (default: written to out/data), save out/weights.pt and out/metrics.json.

    The training runs in a child process started with the recipe's numerics (`segedge.train.worker`);
    its progress lines come through `progress`.
    """
    if data is None:
        progress("writing the shapes dataset")
        data = write_shapes_dataset(out / "data", config.data)
    request = json.dumps({"config": dataclasses.asdict(config), "out": str(out), "data": str(data)})
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen([sys.executable, "-m", "segedge.train.worker"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=errors, text=True,
                                 env=numerics.child_env(config.numerics, config.threads))
        try:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(request)
            child.stdin.close()
            for line in child.stdout:
                progress(line.rstrip("\n"))
            code = child.wait()
        finally:
            if child.poll() is None:  # Ctrl-C or an error here: the child stops with us
                child.kill()
                child.wait()
        if code != 0:
            errors.seek(0)
            lines = errors.read().strip().splitlines() or [f"exit status {code}"]
            raise RuntimeError(f"training {config.model} failed: {lines[-1]}")
    return json.loads((out / "metrics.json").read_text())


def train_here(config: TrainConfig, out: Path, data: Path, progress: Progress = lambda message: None) -> dict[str, Any]:
    """`train`'s work, in this process (`segedge.train.worker` calls it, in the child `train` starts)."""
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        in_force = numerics.apply(config.numerics)
        torch.manual_seed(config.seed)  # the initial weights too
        classes = config.data.classes
        built = build(config.model, num_classes=len(classes), options=config.build_kwargs)
        model, card = built.module, built.card
        images, masks = _load_split(data, "train", card)
        progress(f"training {config.model} for {config.steps} steps of {config.batch_size} "
                 f"({'bf16 autocast' if config.bf16 else 'fp32'}, {config.threads} threads, "
                 f"{config.numerics} numerics)")
        fit_start = time.perf_counter()
        _fit(model, images, masks, config, progress)
        fit_seconds = time.perf_counter() - fit_start
        _to_memory_format(model, torch.contiguous_format)  # saved weights are plain contiguous tensors
        torch.save(model.state_dict(), out / "weights.pt")
        model.eval()
        progress("measuring mIoU on the held-out split")
        accuracy = evaluate(config.model, torch_labeller(model, card), labelled_pairs(data), len(classes))
    finally:
        torch.set_num_threads(threads)
    metrics = {
        "miou": accuracy.miou,
        "pixel_accuracy": accuracy.pixel_accuracy,
        "per_class_iou": dict(zip(classes, accuracy.per_class_iou)),
        "held_out_images": accuracy.images,
        "train_seconds": round(time.perf_counter() - start, 1),
        "fit_seconds": round(fit_seconds, 1),
        "autocast": "bf16" if config.bf16 else "off",
        **in_force,
        "weights_sha256": weights_digest(model.state_dict()),
        "key": config.key(),
        "config": dataclasses.asdict(config),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors' bytes in name order: equal digests, equal weights, on any two machines."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _fit(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, config: TrainConfig,
         progress: Progress) -> None:
    generator = torch.Generator().manual_seed(config.seed)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    _to_memory_format(model, memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps,
                                                   pct_start=config.warmup)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    model.train()
    start, every = time.perf_counter(), max(10, config.steps // 20)
    for step in range(config.steps):
        pick = torch.randint(0, len(images), (config.batch_size,), generator=generator)
        x, y = _augment(images[pick], masks[pick], step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
            logits = model(x.contiguous(memory_format=memory_format))
        loss = loss_fn(logits.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % every == 0 or step + 1 == config.steps:
            elapsed = time.perf_counter() - start
            left = elapsed / (step + 1) * (config.steps - step - 1)
            progress(f"step {step + 1}/{config.steps}: loss {loss.item():.3f} ({elapsed:.0f} s, about {left:.0f} s left)")


def _to_memory_format(model: torch.nn.Module, memory_format: torch.memory_format) -> None:
    model.to(memory_format=memory_format)  # type: ignore[call-overload]  # accepted at run time; the stubs omit it


def _augment(x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One of the eight flips and quarter turns, cycling with the step (square images only)."""
    turns, flip = step % 4, (step // 4) % 2
    if flip:
        x, y = x.flip(-1), y.flip(-1)
    if turns and x.shape[-1] == x.shape[-2]:
        x, y = torch.rot90(x, turns, (2, 3)), torch.rot90(y, turns, (1, 2))
    return x.contiguous(), y.contiguous()


def _load_split(root: Path, split: str, card: ModelCard) -> tuple[torch.Tensor, torch.Tensor]:
    ids = (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()
    images = [to_model_input(load_image(root / "JPEGImages" / f"{i}.jpg"), card)[0] for i in ids]
    masks = [read_mask(root / "SegmentationClass" / f"{i}.png").astype(np.int64) for i in ids]
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks))
