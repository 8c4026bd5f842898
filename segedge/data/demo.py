"""The data demo weights bring along: the shapes dataset a model card's training record names.

`--weights demo` trains a zoo model with segedge's recipe (`segedge.train.demo`) and records in
the card how (`card.training`): the recipe's key, the dataset's configuration and the held-out
mIoU. Every verb that needs images then takes them from that dataset when none are given:
calibration from its train split, mIoU from its held-out val split.

Datasets live under `$SEGEDGE_CACHE/data/` (default `~/.cache/segedge`), in a folder named by a
hash of their configuration and the generator's version. A missing one (another machine, a
cleared cache) is written again from its seed, so a demo ONNX file finds its data anywhere.
No torch here: `segedge eval` and `quantize` on ONNX files run without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtimes.model.card import ModelCard
from runtimes.errors import CardError
from runtimes.guards.fileio import exclusive_lock
from segedge.data.shapes import VERSIONS, ShapesConfig, write_shapes_dataset

Progress = Callable[[str], None]
DEMO = "demo"  # the `--weights` value that asks for segedge's own training
DATASET = "shapes"
CALIBRATION_SPLIT, HELD_OUT_SPLIT = "train", "val"
# A card's training record is data from the file, not a request: a hostile one asking for a billion
# images would fill the disk. segedge's recipes stay far below these.
MAX_RECORDED_IMAGES, MAX_RECORDED_SIDE = 20_000, 1024


def is_demo(weights: str | os.PathLike[str] | None) -> bool:
    """`--weights demo`. (A checkpoint file named `demo` is given by another spelling: `$PWD/demo`.)"""
    return weights is not None and os.fspath(weights) == DEMO


def cache_root() -> Path:
    return Path(os.environ.get("SEGEDGE_CACHE") or Path.home() / ".cache" / "segedge")


def dataset_record(config: ShapesConfig) -> dict[str, Any]:
    """The dataset as a card records it: enough to write it again, byte for byte."""
    return {"name": DATASET, "classes": list(config.classes), **dataclasses.asdict(config)}


def dataset_key(config: ShapesConfig) -> str:
    text = json.dumps(dataset_record(config), sort_keys=True)
    return f"{DATASET}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def dataset_folder(config: ShapesConfig, cache: Path | None = None, progress: Progress = lambda message: None) -> Path:
    """The dataset's folder in the cache, written now when it is not there (concurrent callers wait)."""
    root = Path(cache or cache_root()) / "data"
    root.mkdir(parents=True, exist_ok=True)
    key = dataset_key(config)
    folder = root / key
    with exclusive_lock(root / f"{key}.lock"):
        if not (folder / "ImageSets" / "Segmentation" / f"{HELD_OUT_SPLIT}.txt").is_file():
            progress(f"writing the shapes dataset ({config.train} + {config.val} images of "
                     f"{config.size[0]}x{config.size[1]}) to {folder}")
            with tempfile.TemporaryDirectory(prefix=f".{key}-", dir=root) as workdir:
                write_shapes_dataset(workdir, config)
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(workdir, folder)
                os.mkdir(workdir)  # TemporaryDirectory removes its (now empty) folder itself
    return folder


def recorded_dataset(card: ModelCard | None) -> Path | None:
    """The dataset the card's demo weights were trained on (written again when missing); None without a record."""
    if card is None or not card.training:
        return None
    record = card.training.get("dataset")
    if not isinstance(record, dict) or record.get("name") != DATASET:
        raise CardError(f"{card.name}: the card's training record names no dataset segedge can make")
    if record.get("version") not in VERSIONS:
        raise CardError(f"{card.name} was trained on version {record.get('version')} of the shapes data; this "
                        f"segedge writes versions {', '.join(map(str, VERSIONS))}: export it again with --weights demo")
    try:
        config = ShapesConfig(train=int(record["train"]), val=int(record["val"]), version=int(record["version"]),
                              size=(int(record["size"][0]), int(record["size"][1])), seed=int(record["seed"]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CardError(f"{card.name}: the card's training record has a bad dataset entry ({exc})") from None
    if config.train + config.val > MAX_RECORDED_IMAGES or max(config.size) > MAX_RECORDED_SIDE:
        raise CardError(f"{card.name}: the card's training record asks for {config.train + config.val} images of "
                        f"{config.size[0]}x{config.size[1]}, more than any segedge recipe makes (at most "
                        f"{MAX_RECORDED_IMAGES} of {MAX_RECORDED_SIDE} px a side): give --calib and --data")
    return dataset_folder(config)


def with_demo_data(card: ModelCard | None, calib: Path | None, data: Path | None) -> tuple[Path | None, Path | None]:
    """(calib, data), each defaulting to the card's demo dataset when not given: its train split
    calibrates (`exporters.calibration` reads a VOC root's train split), its val split is labelled."""
    if calib is not None and data is not None:
        return calib, data
    root = recorded_dataset(card)
    if root is None:
        return calib, data
    return calib or root, data or root
