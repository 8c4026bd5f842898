"""`--weights demo`: the zoo's models trained by segedge's own recipe on the shapes data, cached.

One recipe per model (timm's style: a table of typed defaults, one entry per name), each keyed
by a hash of itself (`TrainConfig.key`), so the cached weights are what the recipe makes. The
first use trains (progress on stderr) and caches under `$SEGEDGE_CACHE/trained/<key>/`; later
uses load. Every model is trained from scratch (segedge downloads no pretrained backbone) on 2
CPU threads, with bf16 autocast where the CPU has bf16 units and channels_last memory; each recipe
is meant to reach mIoU >= 0.80 on the held-out split. Which ones were trained to the end and what
they reached is written down once, in `tests/test_train.py` (MEASURED, with their keys) and the
README; the others are first guesses sized from measured step times.

The model card of an export with demo weights records how they were made (`card.training`):
recipe key, dataset and splits, held-out mIoU. `segedge.data.demo` finds the data again from it;
`recorded_weights` the checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtimes.model.card import ModelCard
from runtimes.errors import CheckpointError, UsageError
from segedge.data.demo import (
    CALIBRATION_SPLIT,
    DEMO,
    HELD_OUT_SPLIT,
    cache_root,
    dataset_record,
    is_demo,
)
from segedge.data.shapes import ShapesConfig
from segedge.models import get_spec
from segedge.sources.build import is_user_source
from segedge.train.recipe import TrainConfig, TrainedModel, trained_model

Progress = Callable[[str], None]

__all__ = ["DEMO", "RECIPES", "demo_card", "demo_model", "demo_options", "demo_recipe", "is_demo", "recorded_weights",
           "reference_weights", "training_record"]


def _recipe(model: str, size: int, steps: int, batch: int, lr: float, train: int = 1500,
            build_kwargs: dict[str, Any] | None = None, **more: Any) -> TrainConfig:
    return TrainConfig(model=model, build_kwargs=build_kwargs or {}, steps=steps, batch_size=batch, lr=lr,
                       data=ShapesConfig(train=train, val=100, size=(size, size)), threads=2, autocast="auto",
                       channels_last=True, **more)


# model -> recipe: version 3 of the shapes data at 96x96, 1,500 training images, 100 held-out ones.
# Steps are sized from measured step times (bf16, channels_last, 2 threads, a quiet 2-core EPYC):
# DeepLab v3+ ResNet-50 0.7 s, PSPNet 1.4 s, FCN-8s 1.6 s, HRNet 0.55 s, U-Net 0.3 s, the
# MobileNets 0.2 s. DeepLab v3+ trains in README command 1, which must finish within 12 minutes on
# 2 cores: 150 steps at lr 2e-3 reach 0.893 (300 at 1e-3: 0.913, 1.4 s a step and 14 min in all on a
# 2-core Xeon; 150 at 1e-3: 0.871; 100 at 2e-3: 0.855).
RECIPES: dict[str, TrainConfig] = {
    "deeplabv3plus_resnet50": _recipe("deeplabv3plus_resnet50", 96, 150, 8, 2e-3),
    "deeplabv3plus_mobilenetv2": _recipe("deeplabv3plus_mobilenetv2", 96, 800, 8, 2e-3),
    "pspnet_resnet50": _recipe("pspnet_resnet50", 96, 500, 8, 1e-3),  # 300 steps reached 0.785 (line IoU 0.41)
    "unet": _recipe("unet", 96, 800, 8, 2e-3, build_kwargs={"padding": "same", "base_channels": 32}),
    "hrnet_w18_ocr": _recipe("hrnet_w18_ocr", 96, 500, 8, 2e-3),
    "lraspp_mobilenet_v3_large": _recipe("lraspp_mobilenet_v3_large", 96, 1500, 8, 2e-3),
    # fc6/fc7 at 1,024 channels, not the paper's 4,096: its 7x7 fc6 alone is 103M weights, 2.5 s a step.
    # 400 steps with PyTorch's default init reached 0.751 (line IoU 0.26); VGG now starts He-initialised.
    "fcn8s": _recipe("fcn8s", 96, 600, 8, 2e-4, build_kwargs={"fc_channels": 1024}),
    # Issue 16's transformers, from scratch (no ImageNet pretraining here): SegFormer-B0 0.27 s a step;
    # UperNet-Swin-T with a 128-channel head and stochastic depth 0.1 0.87 s (the paper's 512-channel head
    # is most of the step at 96x96: 9-16 s a step against 3-9 s for 128 channels, both measured beside
    # another job; the paper's stochastic depth 0.3 is for 160k iterations on ADE20K).
    "segformer_b0": _recipe("segformer_b0", 96, 1500, 8, 1e-3),
    "upernet_swin_t": _recipe("upernet_swin_t", 96, 600, 8, 5e-4,
                              build_kwargs={"channels": 128, "drop_path_rate": 0.1}),
}


def demo_recipe(model: str) -> TrainConfig:
    """The demo recipe of a zoo model (aliases resolve: `deeplabv3plus` is `deeplabv3plus_resnet50`)."""
    if is_user_source(model):
        raise UsageError(f"--weights {DEMO} trains zoo models only; {model} is your own: give its checkpoint")
    name = get_spec(model).name
    recipe = RECIPES.get(name)
    if recipe is None:
        raise UsageError(f"--weights {DEMO}: {name} has no demo recipe; models with one: {', '.join(sorted(RECIPES))}")
    return recipe


def demo_model(model: str, progress: Progress = lambda message: None) -> TrainedModel:
    """The demo-trained `model`: from the cache, or trained now (minutes: see RECIPES)."""
    recipe = demo_recipe(model)
    folder = cache_root() / "trained" / recipe.key()
    if not (folder / "metrics.json").is_file():
        progress(f"no demo weights for {recipe.model} in {folder.parent} yet: training them once "
                 f"({recipe.steps} steps; cached for every later run)")
    return trained_model(recipe, progress=progress)


def training_record(trained: TrainedModel) -> dict[str, Any]:
    """What the card says about demo weights: enough to find (or make) the weights and the data again."""
    config, metrics = trained.config, trained.metrics
    return {
        "weights": DEMO,
        "recipe": config.key(),
        "model": config.model,
        "dataset": dataset_record(config.data),
        "calibration_split": CALIBRATION_SPLIT,
        "held_out_split": HELD_OUT_SPLIT,
        "held_out_images": config.data.val,
        "held_out_miou": round(float(metrics["miou"]), 4),
        "steps": config.steps,
        "batch_size": config.batch_size,
        "autocast": metrics.get("autocast", "off"),
        "train_seconds": metrics.get("train_seconds"),
    }


def demo_options(trained: TrainedModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """(builder keywords, card fields) of an export of demo weights: the dataset's classes, the record."""
    return trained.build_options, {"classes": trained.classes, "training": training_record(trained)}


def demo_card(model: str, progress: Progress = lambda message: None) -> ModelCard:
    """The card an export of `model` with demo weights carries (no export needed: for `eval --torch`)."""
    from segedge.sources import build

    trained = demo_model(model, progress)
    options, fields = demo_options(trained)
    return build(model, options=options).card.with_overrides(**fields)


def recorded_weights(card: ModelCard, progress: Progress = lambda message: None) -> Path | None:
    """The checkpoint of the demo weights a card records (None when it records none).

    From the cache; trained again when missing and today's recipe for the model is the one
    recorded (same key, so the same weights); otherwise an error that says what to do.
    """
    if not card.training:
        return None
    key = str(card.training.get("recipe", ""))
    checkpoint = cache_root() / "trained" / key / "weights.pt"
    if key and checkpoint.is_file():
        return checkpoint
    recipe = RECIPES.get(card.source)
    if recipe is not None and recipe.key() == key:
        return demo_model(card.source, progress).checkpoint
    raise CheckpointError(f"{card.name} was exported with demo weights {key or '?'}, which are not in "
                          f"{cache_root() / 'trained'} and which today's recipe no longer makes: export it "
                          f"again with --weights {DEMO}")


def reference_weights(card: ModelCard, weights: str | os.PathLike[str] | None,
                      progress: Progress = lambda message: None) -> Path | None:
    """The checkpoint the PyTorch reference of `card` loads: `--weights` as given, `demo`, or, without
    `--weights`, the demo weights the card records (the file holds those, not random ones)."""
    if weights is not None and not is_demo(weights):
        return Path(weights)
    recorded = recorded_weights(card, progress)
    if recorded is not None:
        return recorded
    if is_demo(weights):
        if card.source and not is_user_source(card.source):
            trained = demo_model(card.source, progress)
            if trained.build_options.get("num_classes") != card.num_classes:
                raise CheckpointError(f"--weights {DEMO}: {card.name} has {card.num_classes} classes, the demo "
                                      f"weights {len(trained.classes)}; export it with --weights {DEMO}")
            return trained.checkpoint
        raise UsageError(f"--weights {DEMO}: {card.name} was not exported from a zoo model")
    return None
