"""Stages that run at the same time, joined by bounded queues: decode while the model runs.

`staged(items, stages)` pulls `items` in a thread of its own (so an iterator that decodes, decodes
there), runs each stage in a thread of its own, and yields what the last stage returns, in the
order of `items`. Every queue holds at most `depth` items: a slow stage holds the others back
(backpressure) instead of letting decoded frames pile up in memory.

Threads overlap here because the heavy work releases the GIL: ONNX Runtime's and OpenVINO's runs,
FFmpeg's decoding and encoding, numpy's array arithmetic and Pillow's codecs.

An exception in a stage (or in `items`) ends the run: whatever came before it is still yielded,
in order, then the exception is raised to the consumer. Leaving the generator early (a break, an
error, a Ctrl-C in the consumer) stops the threads: they wait on nothing for more than
`_POLL_S`, and, as daemons, never keep the process alive.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

_POLL_S = 0.05  # how often a blocked thread looks whether the run was stopped
_END = object()  # after the last item


class _Failure:
    """An exception on its way to the consumer, behind the items that came before it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def staged(items: Iterable[Any], stages: Sequence[Callable[[Any], Any]], depth: int = 2) -> Iterator[Any]:
    """Yield `stages[-1](...stages[0](item))` for each item, in order, with every stage in its own thread."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    stop = threading.Event()
    queues: list[queue.Queue] = [queue.Queue(maxsize=depth) for _ in range(len(stages) + 1)]
    threads = [threading.Thread(target=_feed, args=(items, queues[0], stop), name="segedge-stage-input", daemon=True)]
    for index, stage in enumerate(stages):
        threads.append(threading.Thread(target=_work, args=(stage, queues[index], queues[index + 1], stop),
                                        name=f"segedge-stage-{index}", daemon=True))
    for thread in threads:
        thread.start()
    try:
        while True:
            got = _get(queues[-1], stop)
            if got is _END:
                return
            if isinstance(got, _Failure):
                raise got.error
            yield got
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=_POLL_S)


def _feed(items: Iterable[Any], out: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in items:
            if not _put(out, item, stop):
                return
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who raises it
        _put(out, _Failure(exc), stop)
        return
    _put(out, _END, stop)


def _work(stage: Callable[[Any], Any], source: queue.Queue, out: queue.Queue, stop: threading.Event) -> None:
    while True:
        item = _get(source, stop)
        if item is None and stop.is_set():
            return
        if item is _END or isinstance(item, _Failure):
            _put(out, item, stop)
            return
        try:
            result = stage(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who raises it
            _put(out, _Failure(exc), stop)
            return
        if not _put(out, result, stop):
            return


def _put(target: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put `item`, waiting while the queue is full; False when the run was stopped meanwhile."""
    while not stop.is_set():
        try:
            target.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(source: queue.Queue, stop: threading.Event) -> Any:
    """The next item; None once the run was stopped."""
    while not stop.is_set():
        try:
            return source.get(timeout=_POLL_S)
        except queue.Empty:
            continue
    return None
