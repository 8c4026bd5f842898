"""`segedge eval --engine ray`: each model's confusion matrix over a labelled folder, on a Ray Data actor pool.

Each actor holds one Predictor and reads its image/mask pairs with `read_pair`, the reader a local
eval uses (so the data folder must be at the same path on every node). Each call scores one block
of pairs into a `ConfusionMatrix`; the driver sums the blocks' matrices. Integer counts sum exactly,
so every score equals a local eval's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ray

from runtimes.errors import UsageError
from runtimes.measure.metrics import ConfusionMatrix
from runtimes.predictor import Predictor

from segedge.batch.cluster import RayCluster, batches, on_actor_pool, plan_blocks, ray_session
from segedge.data.labelled import labelled_pairs, read_pair
from segedge.evaluate.run import EvalRequest, EvalResult
from segedge.evaluate.scoring import IGNORE_INDEX, Accuracy


def eval_on_ray(request: EvalRequest, cluster: RayCluster,
                progress: Callable[[str], None] = lambda message: None) -> EvalResult:
    """`run_eval(request)`, each model scored by an actor pool; ONNX models only."""
    if request.torch_model is not None:
        raise UsageError("--torch scores a PyTorch model in this process: run it with --engine local")
    if request.data is None:
        raise UsageError("--engine ray needs --data: a labelled folder every Ray node reaches at the same path")
    pairs = labelled_pairs(request.data, request.limit)
    scores: list[tuple[str, Accuracy]] = []
    classes: tuple[str, ...] = ()
    # What `onnx_labeller` gives a local eval's Predictor, threads aside.
    runtime = {key: value for key, value in request.spec.predictor_keywords().items() if key != "threads"}
    options = {**runtime, **request.card_overrides}
    with ray_session(cluster) as workers:
        for path in request.models:
            # The card, and the model and options checked, before any actor starts.
            card = Predictor(path, threads=1, **options).card
            classes = classes or card.classes
            start = time.perf_counter()
            matrix = confusion_on_ray(path, options, pairs, max(2, card.num_classes), workers,
                                      cluster.threads_per_worker, _counter(progress, path.name, len(pairs)))
            accuracy = Accuracy(path.name, matrix.mean_iou(), matrix.pixel_accuracy(),
                                tuple(float(v) for v in matrix.iou()), len(pairs), time.perf_counter() - start)
            scores.append((f"{path.name} ({card.precision})", accuracy))
    return EvalResult(request.data, len(pairs), classes, scores)


def _counter(progress: Callable[[str], None], name: str, total: int) -> Callable[[int], None]:
    done = 0

    def advance(images: int) -> None:
        nonlocal done
        done += images
        progress(f"evaluating {name} on Ray: {done} of {total} images")

    return advance


def confusion_on_ray(model: Path, options: dict[str, Any], pairs: Sequence[tuple[Path, Path]], num_classes: int,
                     workers: int, threads: int, advance: Callable[[int], None] = lambda images: None) -> ConfusionMatrix:
    """The confusion matrix of `model` (run by `Predictor(model, **options)`) over `pairs`: one per block,
    from the actors, summed here."""
    rows = [{"image": os.path.abspath(image), "mask": os.path.abspath(mask)} for image, mask in pairs]
    blocks, workers = plan_blocks(len(rows), workers)
    items = ray.data.from_items(rows, override_num_blocks=blocks)
    spec = (os.path.abspath(model), options, threads, num_classes)
    scored = on_actor_pool(items, ScoreActor, spec, workers, threads, batch_size=None)  # None: a block per call
    total = ConfusionMatrix(num_classes, IGNORE_INDEX)
    for batch in batches(scored):
        for matrix, images in zip(batch["matrix"], batch["images"]):
            total.matrix += matrix
            advance(int(images))
    return total


class ScoreActor:
    """One Predictor, built once per actor; each call scores a block of (image, mask) pairs."""

    def __init__(self, model: str, options: dict[str, Any], threads: int, num_classes: int) -> None:
        self.predictor = Predictor(model, threads=threads, **options)
        self.num_classes = num_classes

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        matrix = ConfusionMatrix(self.num_classes, IGNORE_INDEX)
        for image, mask in zip(batch["image"], batch["mask"]):
            rgb, target = read_pair(Path(image), Path(mask))
            matrix.update(target, self.predictor.predict(rgb))
        return {"matrix": matrix.matrix[None], "images": np.array([len(batch["image"])])}
