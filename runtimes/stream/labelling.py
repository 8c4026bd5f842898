"""A Predictor's steps for a stream of images, overlapped: read, prepare, run, label at once.

`label_stream(predictor, items)` is what `Predictor.predict_stream`, the video path and the
folder path of `segedge predict` share. Its three stages each run in a thread
(`runtimes.stream.pipeline.staged`), so image i+1 is decoded and normalised while the model runs
on image i and image i-1's scores become labels:

1. read + prepare: `load_image`, then `to_model_input` (resize, pad, normalise);
2. run: the model (`Predictor._run`); where `predict` labels inside the runtime's graph (OpenVINO's
   adapter) or tiles the image, `predict` itself, whole;
3. finish: crop, labels (or probabilities, smoothed over time when asked, then labels).

These are `Predictor.predict`'s own calls, in its order, on the same arrays: without smoothing the
masks are `predict`'s, bit for bit (tested). Items that cannot be read are passed on with their error when `skip_unreadable`.

Temporal smoothing (`smoothing` = s in 0..1, off at 0): each frame's class probabilities become
s x (the previous frame's smoothed ones) + (1 - s) x its own before the argmax: an exponential
moving average that steadies labels flickering between frames, at the cost of lagging behind
motion (a frame's weight halves every log(0.5)/log(s) frames: 2.4 at s = 0.75). It needs the
probabilities, so it takes the probability path (softmax) even on OpenVINO; a change of frame
size starts the average again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import LabelsInGraph
from ..errors import ImageError, UsageError
from ..imaging.image import ImageLike, load_image
from ..imaging.postprocess import labels_from_probabilities
from ..imaging.preprocess import from_model_output, model_input_size, to_model_input
from .pipeline import staged

if TYPE_CHECKING:
    from ..predictor import Predictor

Reader = Callable[[ImageLike], np.ndarray]


@dataclass
class Labelled:
    """One item through the stages: its tag (whatever the caller passed along), pixels and labels."""

    tag: Any
    rgb: np.ndarray | None = None
    labels: np.ndarray | None = None
    error: ImageError | None = None
    _work: Any = None  # between stages: the model input and its placement, then the model's output


def label_stream(predictor: Predictor, items: Iterable[tuple[Any, ImageLike]], *, smoothing: float = 0.0,
                 depth: int = 2, read: Reader | None = None, skip_unreadable: bool = False) -> Iterator[Labelled]:
    """(tag, image) pairs in; `Labelled(tag, rgb, labels)` out in the same order, stages overlapped.

    `read`: how an image becomes pixels (default `load_image` with the predictor's pixel limit).
    `depth`: items each queue between stages holds (memory: about 3 x depth images in flight).
    """
    if not 0.0 <= smoothing < 1.0:
        raise UsageError(f"smoothing must lie in 0..1 (0 is off, 1 would never change), got {smoothing}")
    reader = read or (lambda image: load_image(image, max_pixels=predictor.max_pixels))
    steps = _Steps(predictor, reader, smoothing, skip_unreadable, inputs=_Buffers(keep=depth + 2))
    return staged(((tag, image) for tag, image in items), [steps.prepare, steps.run, steps.finish], depth)


def label_maps(predictor: Predictor, frames: Iterable[ImageLike], *, smoothing: float = 0.0,
               depth: int = 2) -> Iterator[np.ndarray]:
    """`Predictor.predict_stream`: the label maps of `frames`, in order (arguments checked at once)."""
    return _maps(label_stream(predictor, ((None, frame) for frame in frames), smoothing=smoothing, depth=depth))


def _maps(items: Iterator[Labelled]) -> Iterator[np.ndarray]:
    for item in items:
        assert item.labels is not None  # an unreadable frame raised: nothing is skipped here
        yield item.labels


class _Buffers:
    """Model inputs handed from the prepare stage to the run stage and back after the run.

    A 1280 x 960 input is 15 MB of float32; a new one per image is memory the allocator may map
    and fault in again (measured in one thread: 45 page faults and up to 1.6 ms of system time per
    image, none and under 0.1 ms reused), on the cores the model runs on. `keep`: the inputs in
    flight at most, one being prepared, `depth` queued and one being run; an input of another size
    is a new array.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...]) -> np.ndarray:
        with self._lock:
            for index in range(len(self._free) - 1, -1, -1):  # the latest given first: still in the caches
                if self._free[index].shape == shape:
                    return self._free.pop(index)
        return np.empty(shape, dtype=np.float32)

    def give(self, array: np.ndarray) -> None:
        with self._lock:
            self._free.append(array)
            del self._free[: -self.keep]  # the oldest go: after a change of size they fit no image


class _Steps:
    def __init__(self, predictor: Predictor, read: Reader, smoothing: float, skip_unreadable: bool,
                 inputs: _Buffers) -> None:
        self.predictor, self.read, self.smoothing, self.skip_unreadable = predictor, read, smoothing, skip_unreadable
        self.inputs = inputs
        self.average: np.ndarray | None = None  # the smoothed probabilities so far (finish stage only)

    def prepare(self, pair: tuple[Any, ImageLike]) -> Labelled:
        tag, image = pair
        try:
            rgb = self.read(image)
        except ImageError as exc:
            if not self.skip_unreadable:
                raise
            return Labelled(tag, error=exc)
        item = Labelled(tag, rgb)
        p = self.predictor
        if not self.smoothing and not isinstance(p.session, LabelsInGraph) and p._tile_size_for(rgb) is None:
            resize_long = p.resize_for(rgb)
            size = model_input_size((rgb.shape[0], rgb.shape[1]), p.card, resize_long)[1]
            item._work = to_model_input(rgb, p.card, resize_long=resize_long, out=self.inputs.take((3, *size)))
        return item

    def run(self, item: Labelled) -> Labelled:
        p = self.predictor
        if item.rgb is None:
            return item
        if self.smoothing:
            item._work = p._predict(item.rgb, p._probabilities)
        elif item._work is None:  # tiled, or labelled inside the runtime's graph: predict's own path, whole
            item.labels = p.predict(item.rgb)
        else:
            x, placement = item._work
            item._work = (p._run(x[None])[0], placement)
            self.inputs.give(x)  # the run is over: the next image may be written into it
        return item

    def finish(self, item: Labelled) -> Labelled:
        p = self.predictor
        if item.rgb is None or item.labels is not None:
            item._work = None
            return item
        if self.smoothing:
            probabilities = item._work
            if self.average is None or self.average.shape != probabilities.shape:
                self.average = probabilities
            else:
                self.average = self.smoothing * self.average + (1.0 - self.smoothing) * probabilities
            item.labels = labels_from_probabilities(self.average, p.card.output_kind, p.threshold)
        else:
            output, placement = item._work
            item.labels = p._labels(from_model_output(output, placement))
        item._work = None
        return item
